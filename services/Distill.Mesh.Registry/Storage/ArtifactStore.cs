using Distill.Mesh.Specs.Naming;
using System.Security.Cryptography;
using System.Text;
using Distill.Mesh.Contracts.Registry.V1;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Checkpoints;
using Google.Protobuf;
using Microsoft.Data.Sqlite;

namespace Distill.Mesh.Registry.Storage;

/// <summary>
/// The registry's storage: files as content-addressed blobs (<c>blobs/ab/abcdef…</c>, by
/// SHA-256) and metadata in SQLite (artifacts with versions per name, their files, tags).
/// A push becomes visible in one transaction after all its blobs are in place, so a crash at any
/// point leaves either no version or a whole one; leftovers of interrupted pushes are swept at start.
/// </summary>
public sealed partial class ArtifactStore
{
    private readonly RegistryOptions _options;
    private readonly string _connectionString;
    private readonly Lock _gate = new();

    public ArtifactStore(RegistryOptions options)
    {
        _options = options;
        Root = Path.GetFullPath(options.Root);
        Directory.CreateDirectory(Path.Combine(Root, "blobs"));
        Directory.CreateDirectory(Path.Combine(Root, "uploads"));
        _connectionString = new SqliteConnectionStringBuilder { DataSource = Path.Combine(Root, "registry.db"), Pooling = true, DefaultTimeout = 30 }.ToString();
        using (var connection = Open())
        {
            Execute(connection, """
                PRAGMA journal_mode = WAL;
                CREATE TABLE IF NOT EXISTS artifacts (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL, kind INTEGER NOT NULL,
                    manifest TEXT NOT NULL, base_fingerprint TEXT NOT NULL, total_bytes INTEGER NOT NULL, created_unix INTEGER NOT NULL,
                    UNIQUE (name, version));
                CREATE TABLE IF NOT EXISTS files (id TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (id, sha256));
                CREATE INDEX IF NOT EXISTS files_by_sha ON files (sha256);
                CREATE TABLE IF NOT EXISTS tags (name TEXT NOT NULL, tag TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (name, tag));
                """);
        }

        // Interrupted pushes of an earlier process: never visible, now removed.
        foreach (var stale in Directory.EnumerateDirectories(Path.Combine(Root, "uploads")))
            Directory.Delete(stale, recursive: true);
        SweepOrphans();
    }

    /// <summary>Blobs no version references (a commit killed between placing its blobs and its transaction), removed.</summary>
    public int SweepOrphans()
    {
        lock (_gate)
        {
            var referenced = new HashSet<string>(StringComparer.Ordinal);
            using (var connection = Open())
            using (var command = connection.CreateCommand())
            {
                command.CommandText = "SELECT DISTINCT sha256 FROM files";
                using var reader = command.ExecuteReader();
                while (reader.Read())
                    referenced.Add(reader.GetString(0));
            }

            var removed = 0;
            foreach (var blob in Directory.EnumerateFiles(Path.Combine(Root, "blobs"), "*", SearchOption.AllDirectories))
            {
                if (referenced.Contains(Path.GetFileName(blob)))
                    continue;
                File.Delete(blob);
                removed++;
            }

            return removed;
        }
    }

    /// <summary>The registry folder.</summary>
    public string Root { get; }

    public RegistryOptions Options => _options;

    /// <summary>Where a blob lives.</summary>
    public string BlobPath(string sha256) => Path.Combine(Root, "blobs", sha256[..2], sha256);

    /// <summary>Checks a manifest (names, paths, sizes, limits) and opens an upload for its files.</summary>
    public ArtifactUpload BeginPush(Manifest manifest)
    {
        ArtifactNames.CheckName(manifest.Name);
        if (manifest.Kind is not (ArtifactKind.Adapter or ArtifactKind.Model))
            throw new ArgumentException("manifest kind must be ADAPTER or MODEL");
        if (manifest.Files.Count == 0)
            throw new ArgumentException("the manifest lists no files");
        if (manifest.Files.Count > _options.MaxFiles)
            throw new ArtifactTooLargeException($"{manifest.Files.Count} files; this registry accepts at most {_options.MaxFiles} per artifact");
        var paths = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in manifest.Files)
        {
            ArtifactNames.CheckPath(file.Path);
            if (!paths.Add(file.Path.ToLowerInvariant()))
                throw new ArgumentException($"'{file.Path}' is listed twice in the manifest");
            if (file.Size < 0)
                throw new ArgumentException($"'{file.Path}' has a negative size");
            if (file.Sha256.Length != 64 || !file.Sha256.All(Uri.IsHexDigit) || file.Sha256 != file.Sha256.ToLowerInvariant())
                throw new ArgumentException($"'{file.Path}': sha256 must be 64 lower-case hex digits");
        }

        var total = manifest.Files.Sum(f => f.Size);
        if (total > _options.MaxArtifactBytes)
            throw new ArtifactTooLargeException($"the artifact is {total:N0} bytes; this registry accepts at most {_options.MaxArtifactBytes:N0}");
        if (manifest.Kind == ArtifactKind.Adapter)
        {
            foreach (var required in new[] { LoraAdapter.ConfigFileName, LoraAdapter.WeightsFileName })
            {
                if (!paths.Contains(required))
                    throw new ArtifactRejectedException($"an adapter needs {required} at its top level");
            }

            if (string.IsNullOrWhiteSpace(manifest.Lineage?.BaseModel))
                throw new ArtifactRejectedException("an adapter's manifest must name its base model (lineage.base_model): the registry checks the adapter against it");
        }

        return new ArtifactUpload(manifest.Clone(), Path.Combine(Root, "uploads", Guid.NewGuid().ToString("N")));
    }

    /// <summary>
    /// Finishes a push: every file whole and matching its hash; an adapter checked against its
    /// base model; blobs moved into place; then one transaction makes the version visible.
    /// Pushing identical content under the same name returns the existing artifact.
    /// </summary>
    public Artifact Commit(ArtifactUpload upload)
    {
        upload.Complete();
        var manifest = upload.Manifest;
        if (manifest.Kind == ArtifactKind.Adapter)
            ValidateAdapter(upload);
        else
            ValidateModel(upload);

        // Validated against the real base above; stored without the pushing machine's paths.
        if (manifest.Lineage is { } lineage)
            LineagePaths.Redact(lineage);
        var id = IdOf(manifest);
        lock (_gate)
        {
            // Blobs first, then the transaction: a version never names a missing blob. What this
            // commit placed is taken back if the transaction fails; a process killed in between
            // leaves blobs no version names, which the next start sweeps.
            var placed = new List<string>();
            foreach (var file in manifest.Files)
            {
                var blob = BlobPath(file.Sha256);
                var source = Path.Combine(upload.Tree, file.Path);
                if (File.Exists(blob) || placed.Contains(blob))
                    continue; // same bytes already stored (hash verified)
                Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
                File.Move(source, blob);
                placed.Add(blob);
            }

            using var connection = Open();
            try
            {
                CommitVersion(connection, manifest, id);
            }
            catch
            {
                foreach (var blob in placed)
                    File.Delete(blob);
                throw;
            }

            return Find(connection, "a.id = $id", ("$id", id)).Single();
        }
    }

    private void CommitVersion(SqliteConnection connection, Manifest manifest, string id) =>
            InTransaction(connection, () =>
            {
                if (Find(connection, "a.id = $id", ("$id", id)).Count > 0)
                    return; // the same content under the same name: the existing artifact
                var version = Scalar<long>(connection, "SELECT COALESCE(MAX(version), 0) + 1 FROM artifacts WHERE name = $name", ("$name", manifest.Name));
                Execute(connection, """
                    INSERT INTO artifacts (id, name, version, kind, manifest, base_fingerprint, total_bytes, created_unix)
                    VALUES ($id, $name, $version, $kind, $manifest, $base, $bytes, $created)
                    """,
                    ("$id", id), ("$name", manifest.Name), ("$version", version), ("$kind", (int)manifest.Kind), ("$manifest", JsonFormatter.Default.Format(manifest)),
                    ("$base", manifest.Lineage?.BaseFingerprint ?? ""), ("$bytes", manifest.Files.Sum(f => f.Size)), ("$created", DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
                foreach (var sha in manifest.Files.Select(f => f.Sha256).Distinct())
                    Execute(connection, "INSERT INTO files (id, sha256) VALUES ($id, $sha)", ("$id", id), ("$sha", sha));
            });

    /// <summary>The artifact a reference names.</summary>
    public Artifact Get(string reference)
    {
        var parsed = ArtifactNames.Parse(reference);
        using var connection = Open();
        var found = parsed switch
        {
            { Id: { } id } => Find(connection, "a.id = $id", ("$id", id)),
            { Version: { } version } => Find(connection, "a.name = $name AND a.version = $version", ("$name", parsed.Name!), ("$version", version)),
            { Tag: { } tag } when tag != ArtifactNames.Latest =>
                Find(connection, "a.id = (SELECT id FROM tags WHERE name = $name AND tag = $tag)", ("$name", parsed.Name!), ("$tag", tag)),
            _ => Find(connection, "a.name = $name AND a.version = (SELECT MAX(version) FROM artifacts WHERE name = $name)", ("$name", parsed.Name!)),
        };
        return found.FirstOrDefault() ?? throw new KeyNotFoundException($"no artifact '{parsed}' in the registry");
    }

    /// <summary>Artifacts, newest first, filtered by name, kind and base fingerprint when given.</summary>
    public IReadOnlyList<Artifact> List(string? name = null, ArtifactKind kind = ArtifactKind.Unspecified, string? baseFingerprint = null)
    {
        var where = new List<string> { "1 = 1" };
        var parameters = new List<(string, object)>();
        if (!string.IsNullOrEmpty(name))
        {
            where.Add("a.name = $name");
            parameters.Add(("$name", ArtifactNames.CheckName(name)));
        }

        if (kind != ArtifactKind.Unspecified)
        {
            where.Add("a.kind = $kind");
            parameters.Add(("$kind", (int)kind));
        }

        if (!string.IsNullOrEmpty(baseFingerprint))
        {
            where.Add("a.base_fingerprint = $base");
            parameters.Add(("$base", baseFingerprint));
        }

        using var connection = Open();
        return Find(connection, string.Join(" AND ", where), [.. parameters]);
    }

    /// <summary>Points <paramref name="tag"/> of the artifact's name at it (moving it from another version).</summary>
    public Artifact Tag(string reference, string tag)
    {
        ArtifactNames.CheckTag(tag);
        if (tag == ArtifactNames.Latest)
            throw new ArgumentException("'latest' is reserved: it always names the newest version");
        var artifact = Get(reference);
        using var connection = Open();
        Execute(connection, "INSERT INTO tags (name, tag, id) VALUES ($name, $tag, $id) ON CONFLICT (name, tag) DO UPDATE SET id = excluded.id",
            ("$name", artifact.Manifest.Name), ("$tag", tag), ("$id", artifact.Id));
        return Find(connection, "a.id = $id", ("$id", artifact.Id)).Single();
    }

    /// <summary>Removes an artifact, its tags, and the blobs no other artifact uses.</summary>
    public string Delete(string reference)
    {
        var artifact = Get(reference);
        lock (_gate)
        {
            using var connection = Open();
            InTransaction(connection, () =>
            {
                Execute(connection, "DELETE FROM tags WHERE id = $id", ("$id", artifact.Id));
                Execute(connection, "DELETE FROM files WHERE id = $id", ("$id", artifact.Id));
                Execute(connection, "DELETE FROM artifacts WHERE id = $id", ("$id", artifact.Id));
            });

            foreach (var sha in artifact.Manifest.Files.Select(f => f.Sha256).Distinct())
            {
                if (Scalar<long>(connection, "SELECT COUNT(*) FROM files WHERE sha256 = $sha", ("$sha", sha)) == 0)
                    File.Delete(BlobPath(sha));
            }
        }

        return artifact.Id;
    }

    /// <summary>
    /// The artifact's files laid out under <paramref name="folder"/> as links to the blobs (for
    /// reading a stored base model in place).
    /// </summary>
    internal void LinkInto(Artifact artifact, string folder)
    {
        foreach (var file in artifact.Manifest.Files)
        {
            var target = Path.Combine(folder, file.Path);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.CreateSymbolicLink(target, BlobPath(file.Sha256));
        }
    }

    /// <summary>SHA-256 of name, kind and files: equal content under one name has one id.</summary>
    public static string IdOf(Manifest manifest)
    {
        var text = new StringBuilder($"{manifest.Name}\n{(int)manifest.Kind}\n");
        foreach (var file in manifest.Files.OrderBy(f => f.Path, StringComparer.Ordinal))
            text.Append($"{file.Path} {file.Size} {file.Sha256}\n");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }

    /// <summary>BEGIN IMMEDIATE (takes the write lock first, so version numbers cannot race), then COMMIT or ROLLBACK.</summary>
    private static void InTransaction(SqliteConnection connection, Action body)
    {
        Execute(connection, "BEGIN IMMEDIATE");
        try
        {
            body();
            Execute(connection, "COMMIT");
        }
        catch
        {
            Execute(connection, "ROLLBACK");
            throw;
        }
    }

    private static void Execute(SqliteConnection connection, string sql, params (string Name, object Value)[] parameters)
    {
        using var command = Command(connection, sql, parameters);
        command.ExecuteNonQuery();
    }

    private static T Scalar<T>(SqliteConnection connection, string sql, params (string Name, object Value)[] parameters)
    {
        using var command = Command(connection, sql, parameters);
        return (T)Convert.ChangeType(command.ExecuteScalar()!, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static SqliteCommand Command(SqliteConnection connection, string sql, (string Name, object Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
            command.Parameters.AddWithValue(name, value);
        return command;
    }

    private static List<Artifact> Find(SqliteConnection connection, string where, params (string Name, object Value)[] parameters)
    {
        using var command = Command(connection, $"""
            SELECT a.id, a.manifest, a.version, a.total_bytes, a.created_unix,
                   (SELECT MAX(version) FROM artifacts b WHERE b.name = a.name) = a.version,
                   (SELECT group_concat(tag, ',') FROM (SELECT tag FROM tags t WHERE t.id = a.id ORDER BY tag))
            FROM artifacts a WHERE {where} ORDER BY a.created_unix DESC, a.name, a.version DESC
            """, parameters);
        using var reader = command.ExecuteReader();
        var artifacts = new List<Artifact>();
        while (reader.Read())
        {
            var artifact = new Artifact
            {
                Id = reader.GetString(0),
                Manifest = JsonParser.Default.Parse<Manifest>(reader.GetString(1)),
                Version = reader.GetInt32(2),
                TotalBytes = reader.GetInt64(3),
                CreatedUnix = reader.GetInt64(4),
            };
            if (reader.GetBoolean(5))
                artifact.Tags.Add(ArtifactNames.Latest);
            if (!reader.IsDBNull(6))
                artifact.Tags.Add(reader.GetString(6).Split(','));
            artifacts.Add(artifact);
        }

        return artifacts;
    }
}
