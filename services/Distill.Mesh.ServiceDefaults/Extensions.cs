using Microsoft.Extensions.DependencyInjection.Extensions;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Resources;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>The defaults every Distill.Mesh service starts from.</summary>
public static class Extensions
{
    /// <summary>
    /// OpenTelemetry traces and metrics (OTLP export only when OTEL_EXPORTER_OTLP_ENDPOINT is set),
    /// gRPC with the exception and bearer-token interceptors and message limits, liveness and
    /// readiness health, reflection, the shared client channels, the listening endpoint
    /// (Mesh:ListenAddress and Mesh:Port, HTTP/2, https when Mesh:TlsCertificate is set) and the
    /// bearer token (Mesh:AuthToken or Mesh:AuthTokenFile, checked at start). Safe to call once per
    /// host even when several services share it.
    /// </summary>
    public static IHostApplicationBuilder AddServiceDefaults(this IHostApplicationBuilder builder, string serviceName)
    {
        if (builder.Services.Any(s => s.ServiceType == typeof(MutatingMethods)))
            return builder;
        var section = builder.Configuration.GetSection("Mesh");
        // A token file that is missing or empty fails the start: auth is never silently off.
        builder.Services.AddOptions<MeshOptions>().Bind(section).PostConfigure(o => o.AuthToken = MeshAuth.ResolveToken(o))
            .Validate(o => o.AuthScope is MeshAuth.ScopeMutating or MeshAuth.ScopeAll, $"Mesh:AuthScope must be '{MeshAuth.ScopeMutating}' or '{MeshAuth.ScopeAll}'")
            .Validate(o => o.AuthScope != MeshAuth.ScopeAll || !string.IsNullOrEmpty(o.AuthToken), "Mesh:AuthScope 'all' needs a token (Mesh:AuthToken or Mesh:AuthTokenFile)")
            .ValidateOnStart();
        var configured = section.Get<MeshOptions>() ?? new MeshOptions();
        builder.Services.AddSingleton(new MutatingMethods());
        builder.Services.AddSingleton<MeshChannels>();
        builder.Services.TryAddSingleton<JobOutcome>();
        var certificate = MeshTls.LoadServerCertificate(configured);
        builder.Services.Configure<KestrelServerOptions>(k =>
        {
            if (configured.Port is { } port)
                Listen(k, configured.ListenAddress, port, certificate);
            if (configured.MetricsPort is { } metricsPort)
                Listen(k, configured.ListenAddress, metricsPort, null, HttpProtocols.Http1);
            if (configured.HealthPort is { } healthPort)
                Listen(k, configured.ListenAddress, healthPort, null);
            else if (certificate is not null)
                k.ConfigureHttpsDefaults(https => https.ServerCertificate = certificate);
            // Large streams (teacher signal, registry blobs): HTTP/2 windows wide enough that a
            // 1 MiB chunk does not wait for a window update (Kestrel's defaults are 1 MiB / 768 KiB).
            k.Limits.Http2.InitialConnectionWindowSize = MeshTls.Http2WindowBytes * 2;
            k.Limits.Http2.InitialStreamWindowSize = MeshTls.Http2WindowBytes;
            k.Limits.Http2.MaxFrameSize = 1 << 20;
        });
        builder.Services.AddGrpc(options =>
        {
            options.MaxReceiveMessageSize = configured.MaxMessageBytes;
            options.MaxSendMessageSize = configured.MaxMessageBytes;
            options.Interceptors.Add<BearerTokenInterceptor>();
            options.Interceptors.Add<ExceptionInterceptor>();
        });
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcHealthChecks(o =>
        {
            o.Services.Map("", r => r.Tags.Contains(MeshHealth.Ready));
            o.Services.Map(MeshHealth.ReadinessService, r => r.Tags.Contains(MeshHealth.Ready));
            o.Services.Map(MeshHealth.LivenessService, r => r.Tags.Contains(MeshHealth.Live));
        }).AddCheck("process", () => HealthCheckResult.Healthy(), tags: [MeshHealth.Live, MeshHealth.Ready]);

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(serviceName))
            .WithTracing(t => t.AddSource(MeshTelemetry.Name, "Grpc.Net.Client").AddAspNetCoreInstrumentation().AddHttpClientInstrumentation().AddProcessor(new RunIdProcessor()))
            .WithMetrics(m =>
            {
                m.AddMeter(MeshTelemetry.Name).AddMeter("Distill.Mesh.*").AddAspNetCoreInstrumentation().AddRuntimeInstrumentation().AddProcessInstrumentation();
                if (configured.MetricsPort is not null)
                    m.AddPrometheusExporter();
            });
        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
            telemetry.UseOtlpExporter();
        return builder;
    }

    /// <summary>The gRPC endpoint: HTTP/2 only (gRPC needs no HTTP/1), https with the mesh certificate.</summary>
    private static void Listen(KestrelServerOptions kestrel, string address, int port, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate, HttpProtocols protocols = HttpProtocols.Http2)
    {
        void Configure(ListenOptions l)
        {
            l.Protocols = protocols;
            if (certificate is not null)
                l.UseHttps(certificate);
        }

        switch (address.Trim())
        {
            case "*" or "" or "0.0.0.0" or "::":
                kestrel.ListenAnyIP(port, Configure);
                break;
            case "localhost":
                kestrel.ListenLocalhost(port, Configure);
                break;
            default:
                if (!IPAddress.TryParse(address, out var ip))
                    throw new InvalidOperationException($"Mesh:ListenAddress '{address}' is not an IP address, '*' or 'localhost'");
                kestrel.Listen(ip, port, Configure);
                break;
        }
    }

    /// <summary>Maps grpc.health.v1 and server reflection.</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        var mesh = app.Services.GetRequiredService<IOptions<MeshOptions>>().Value;
        if (mesh.HealthPort is { } healthPort)
        {
            // The plaintext probe port serves health checks and nothing else.
            app.Use((context, next) =>
            {
                if (context.Connection.LocalPort == healthPort && !context.Request.Path.StartsWithSegments("/grpc.health.v1.Health", StringComparison.Ordinal))
                {
                    context.Response.StatusCode = Microsoft.AspNetCore.Http.StatusCodes.Status404NotFound;
                    return Task.CompletedTask;
                }

                return next(context);
            });
        }

        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        // The scrape endpoint answers on its own port only, never on the gRPC one.
        if (mesh.MetricsPort is { } metricsPort)
            app.MapPrometheusScrapingEndpoint("/metrics").RequireHost($"*:{metricsPort}");
        return app;
    }
}
