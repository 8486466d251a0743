using System.CommandLine;
using Distill.Mesh.Cli.Hosting;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Controller.Extensions;
using Distill.Mesh.Extractor.Extensions;
using Distill.Mesh.Registry.Extensions;
using Distill.Mesh.Trainer.Extensions;
using Microsoft.AspNetCore.Builder;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill up</c>: the mesh in one process on localhost — teacher (when a model is given),
/// trainer, controller, registry and extractor, Redis when <c>--redis</c> is given (else the
/// in-process cache).
/// </summary>
internal static class UpCommand
{
    public const int ControllerPort = 7100;
    public const int TeacherPort = 7101;
    public const int TrainerPort = 7102;
    public const int RegistryPort = 7103;
    public const int ExtractorPort = 7104;

    public static Command Create()
    {
        var teacher = new Option<string?>("--teacher-model") { Description = "teacher HF folder to serve (default: the demo's teacher if it exists)" };
        var redis = new Option<string?>("--redis") { Description = "Redis connection string for the teacher's cache" };
        var teacherDevice = new Option<string>("--teacher-device") { Description = "cpu, cuda or cuda:N for the teacher", DefaultValueFactory = _ => "cpu" };
        var runs = new Option<string>("--runs") { Description = "folder the trainer keeps runs in", DefaultValueFactory = _ => Path.Combine(".distill", "mesh", "runs") };
        var registry = new Option<string>("--registry-dir") { Description = "folder of the registry (SQLite + blobs)", DefaultValueFactory = _ => Path.Combine(".distill", "registry") };
        var portBase = new Option<int>("--port-base") { Description = "controller port; teacher +1, trainer +2, registry +3, extractor +4 (0: free ports)", DefaultValueFactory = _ => ControllerPort };
        var token = new Option<string?>("--token") { Description = "bearer token the services require (default: one generated into .distill/mesh/token next to --runs)" };
        var noToken = new Option<bool>("--no-token") { Description = "run without a token: anyone who can reach the ports can submit runs and push artifacts" };
        var authScope = new Option<string>("--auth-scope") { Description = "what the token guards: mutating (submits, pushes, cancels) or all (reads and the teacher's scoring too)", DefaultValueFactory = _ => MeshAuth.ScopeMutating };
        authScope.AcceptOnlyFromAmong(MeshAuth.ScopeMutating, MeshAuth.ScopeAll);
        var tlsCert = new Option<string?>("--tls-cert") { Description = "serve https with this certificate (PEM with --tls-key, or .pfx/.p12)" };
        var tlsKey = new Option<string?>("--tls-key") { Description = "PEM private key of --tls-cert" };
        var tlsTrust = new Option<string?>("--tls-trust") { Description = "PEM certificate(s) the services trust when they call each other (default: --tls-cert when it is PEM)" };
        var metricsPort = new Option<int?>("--metrics-port") { Description = "serve Prometheus metrics of the whole mesh at http://127.0.0.1:PORT/metrics" };
        metricsPort.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is { } p && p is < 1 or > 65535)
                r.AddError($"--metrics-port must be a TCP port in 1..65535, not {p}");
        });
        var command = new Command("up", "Start the mesh (controller, teacher, trainer, registry, extractor) in one process on localhost") { teacher, redis, teacherDevice, runs, registry, portBase, token, noToken, authScope, tlsCert, tlsKey, tlsTrust, metricsPort };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var basePort = parse.GetValue(portBase);
            int Port(int offset) => basePort == 0 ? 0 : basePort + offset;
            var certificate = parse.GetValue(tlsCert);
            if (parse.GetValue(noToken) && (parse.GetValue(token) is not null || parse.GetValue(authScope) == MeshAuth.ScopeAll))
            {
                parse.InvocationConfiguration.Error.WriteLine("error: --no-token cannot go with --token or --auth-scope all");
                return 1;
            }

            var tokenFile = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(parse.GetValue(runs)!))!, "token");
            var meshToken = parse.GetValue(noToken) ? "" : parse.GetValue(token) ?? LocalToken(tokenFile);
            output.WriteLine(meshToken.Length == 0
                ? "auth        off (--no-token): anyone who can reach these ports can submit runs and push artifacts"
                : parse.GetValue(token) is not null
                    ? $"auth        the --token given ({parse.GetValue(authScope)} calls)"
                    : tokenFile == Path.GetFullPath(MeshCliOptions.LocalTokenFile)
                        ? $"auth        token in {tokenFile} ({parse.GetValue(authScope)} calls); the CLI reads it for 127.0.0.1 from this folder, elsewhere: export DISTILL_TOKEN_FILE={tokenFile}"
                        : $"auth        token in {tokenFile} ({parse.GetValue(authScope)} calls); clients: export DISTILL_TOKEN_FILE={tokenFile}");
            var mesh = new Dictionary<string, string?>
            {
                ["Mesh:AuthToken"] = meshToken,
                ["Mesh:AuthScope"] = parse.GetValue(authScope),
                ["Mesh:TlsCertificate"] = certificate is null ? "" : Path.GetFullPath(certificate),
                ["Mesh:TlsKey"] = parse.GetValue(tlsKey) is { } key ? Path.GetFullPath(key) : "",
                ["Mesh:TlsTrust"] = parse.GetValue(tlsTrust) is { } trust ? Path.GetFullPath(trust)
                    : certificate is not null && Path.GetExtension(certificate).Equals(".pem", StringComparison.OrdinalIgnoreCase) ? Path.GetFullPath(certificate) : "",
            };
            var apps = new List<WebApplication>();
            try
            {
                var model = parse.GetValue(teacher) ?? (Directory.Exists(Path.Combine(".distill", "demo", "teacher")) ? Path.Combine(".distill", "demo", "teacher") : null);
                if (model is not null)
                {
                    var settings = new Dictionary<string, string?>(mesh) { ["Teacher:Model"] = Path.GetFullPath(model), ["Teacher:Redis"] = parse.GetValue(redis) ?? "", ["Teacher:Device"] = parse.GetValue(teacherDevice) };
                    var (app, address) = await ServiceHost.StartAsync(Port(1), b => Teacher.Extensions.TeacherServiceExtensions.AddTeacherService(b), a => Teacher.Extensions.TeacherServiceExtensions.MapTeacherService(a), settings, quiet: true, cancellationToken);
                    apps.Add(app);
                    output.WriteLine($"teacher     {address}  ({Path.GetFullPath(model)}, cache: {(string.IsNullOrEmpty(parse.GetValue(redis)) ? "in-process" : "redis")})");
                }
                else
                {
                    output.WriteLine("teacher     —  (no --teacher-model and no demo teacher; runs load their teachers in the trainer)");
                }

                var trainerSettings = new Dictionary<string, string?>(mesh) { ["Trainer:RunsDirectory"] = Path.GetFullPath(parse.GetValue(runs)!) };
                var (trainer, trainerAddress) = await ServiceHost.StartAsync(Port(2), b => b.AddTrainerService(), a => a.MapTrainerService(), trainerSettings, quiet: true, cancellationToken);
                apps.Add(trainer);
                output.WriteLine($"trainer     {trainerAddress}  (runs in {trainerSettings["Trainer:RunsDirectory"]})");
                var controllerSettings = new Dictionary<string, string?>(mesh)
                {
                    ["Controller:Trainer"] = trainerAddress,
                    ["Controller:RunsDirectory"] = Path.Combine(Path.GetDirectoryName(trainerSettings["Trainer:RunsDirectory"]!)!, "controller"),
                };
                // One process: every service's instruments are read by each host, so one scrape endpoint (the controller's) serves them all.
                if (parse.GetValue(metricsPort) is { } scrape)
                    controllerSettings["Mesh:MetricsPort"] = scrape.ToString(System.Globalization.CultureInfo.InvariantCulture);
                var (controller, controllerAddress) = await ServiceHost.StartAsync(Port(0), b => b.AddControllerService(), a => a.MapControllerService(), controllerSettings, quiet: true, cancellationToken);
                apps.Add(controller);
                output.WriteLine($"controller  {controllerAddress}  (runs API, local backend; run records in {controllerSettings["Controller:RunsDirectory"]})");
                if (parse.GetValue(metricsPort) is { } served)
                    output.WriteLine($"metrics     http://127.0.0.1:{served}/metrics  (Prometheus, every service of this process)");
                var registrySettings = new Dictionary<string, string?>(mesh) { ["Registry:Root"] = Path.GetFullPath(parse.GetValue(registry)!) };
                var (registryApp, registryAddress) = await ServiceHost.StartAsync(Port(3), b => b.AddRegistryService(), a => a.MapRegistryService(), registrySettings, quiet: true, cancellationToken);
                apps.Add(registryApp);
                output.WriteLine($"registry    {registryAddress}  ({registrySettings["Registry:Root"]}; `distill adapters push/pull/ls`)");
                var (extractorApp, extractorAddress) = await ServiceHost.StartAsync(Port(4), b => b.AddExtractorService(), a => a.MapExtractorService(), mesh, quiet: true, cancellationToken);
                apps.Add(extractorApp);
                output.WriteLine($"extractor   {extractorAddress}  (`distill extract --extractor {extractorAddress} ...`)");
                output.WriteLine("mesh is up; Ctrl-C stops it (running runs checkpoint and resume at the next `distill up`)");
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception e) when (e is FileNotFoundException or InvalidOperationException)
            {
                parse.InvocationConfiguration.Error.WriteLine($"error: {e.Message}");
                return 1;
            }
            catch (IOException e)
            {
                parse.InvocationConfiguration.Error.WriteLine($"error: {e.Message} (is the mesh already up? use --port-base)");
                return 1;
            }
            finally
            {
                foreach (var app in Enumerable.Reverse(apps))
                {
                    await app.StopAsync(CancellationToken.None);
                    await app.DisposeAsync();
                }
            }

            return 0;
        });
        return command;
    }

    /// <summary>
    /// The local mesh's token: the one in <paramref name="path"/>, or a new random one written there
    /// readable by this user only (kept across restarts, so clients keep working).
    /// </summary>
    private static string LocalToken(string path)
    {
        if (File.Exists(path))
        {
            // Someone else's file (or a link to one) would hand them the mesh: only a private, plain file is reused.
            if (new FileInfo(path).LinkTarget is not null)
                throw new InvalidOperationException($"the mesh token file {path} is a symbolic link; remove it (a new token is made) or pass --token");
            if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
                throw new InvalidOperationException($"the mesh token file {path} is readable or writable by others; remove it (a new token is made) or chmod 600 it");
            return MeshAuth.ReadTokenFile(path, "the mesh token file");
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var token = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var temp = $"{path}.{Guid.NewGuid():N}.tmp";
        var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var writer = new StreamWriter(temp, System.Text.Encoding.ASCII, create))
            writer.Write(token + "\n");
        File.Move(temp, path);
        return token;
    }
}
