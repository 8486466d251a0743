namespace Distill.Mesh.Modeling.Checkpoints;

/// <summary>A checkpoint file or folder is malformed; the message names the file and the problem.</summary>
public sealed class CheckpointFormatException(string message, Exception? inner = null)
    : IOException(message, inner);
