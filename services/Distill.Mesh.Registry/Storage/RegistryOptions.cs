namespace Distill.Mesh.Registry.Storage;

/// <summary>The <c>Registry</c> configuration section.</summary>
public sealed class RegistryOptions
{
    /// <summary>Folder of the registry: <c>registry.db</c> (SQLite), <c>blobs/</c>, <c>uploads/</c>. A volume on a cluster.</summary>
    public string Root { get; set; } = Path.Combine(".distill", "registry");

    /// <summary>Largest artifact accepted (sum of its files), in bytes.</summary>
    public long MaxArtifactBytes { get; set; } = 64L << 30;

    /// <summary>Most files in one artifact.</summary>
    public int MaxFiles { get; set; } = 10_000;

    /// <summary>
    /// Folders under which an adapter's <c>lineage.base_model</c> may name a model folder for the
    /// registry to read (on a cluster: the models volume). Empty: any folder the process can read
    /// (one machine, `distill up`). A folder elsewhere gets the same answer as one that does not
    /// exist, so a push cannot probe the server's file system.
    /// </summary>
    public List<string> BaseModelRoots { get; set; } = [];
}

/// <summary>A push over the size or file-count limit.</summary>
public sealed class ArtifactTooLargeException(string message) : Exception(message);

/// <summary>A push whose content is refused (bad adapter, wrong sizes or hashes).</summary>
public sealed class ArtifactRejectedException(string message) : Exception(message);

/// <summary>A stored blob whose bytes no longer match its hash.</summary>
public sealed class BlobCorruptedException(string message) : Exception(message);
