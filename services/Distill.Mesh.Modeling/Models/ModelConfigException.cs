namespace Distill.Mesh.Modeling.Models;

/// <summary>A model config is unsupported or inconsistent; the message names the field.</summary>
public sealed class ModelConfigException(string message, Exception? inner = null) : Exception(message, inner);
