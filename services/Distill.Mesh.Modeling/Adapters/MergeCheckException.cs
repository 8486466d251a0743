namespace Distill.Mesh.Modeling.Adapters;

/// <summary>The merged model's logits are not the adapted model's within the tolerance: nothing was put in place.</summary>
public sealed class MergeCheckException(string message) : Exception(message);
