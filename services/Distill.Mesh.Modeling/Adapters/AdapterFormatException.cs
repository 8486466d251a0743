namespace Distill.Mesh.Modeling.Adapters;

/// <summary>An adapter is malformed or does not fit the model; the message names the keys or fields.</summary>
public sealed class AdapterFormatException(string message, Exception? inner = null) : Exception(message, inner);
