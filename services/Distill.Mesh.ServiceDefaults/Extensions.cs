using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Configuration;
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
    /// gRPC with the exception and bearer-token interceptors and message limits, health checks,
    /// reflection, the shared client channels and, when Mesh:TlsCertificate is set, the certificate
    /// Kestrel's https endpoints present. Safe to call once per host even when several services share it.
    /// </summary>
    public static IHostApplicationBuilder AddServiceDefaults(this IHostApplicationBuilder builder, string serviceName)
    {
        if (builder.Services.Any(s => s.ServiceType == typeof(MutatingMethods)))
            return builder;
        builder.Services.Configure<MeshOptions>(builder.Configuration.GetSection("Mesh"));
        var limit = builder.Configuration.GetSection("Mesh").GetValue<int?>("MaxMessageBytes") ?? new MeshOptions().MaxMessageBytes;
        builder.Services.AddSingleton(new MutatingMethods());
        builder.Services.AddSingleton<MeshChannels>();
        var certificate = MeshTls.LoadServerCertificate(builder.Configuration.GetSection("Mesh").Get<MeshOptions>() ?? new MeshOptions());
        if (certificate is not null)
            builder.Services.Configure<KestrelServerOptions>(k => k.ConfigureHttpsDefaults(https => https.ServerCertificate = certificate));
        // Large streams (teacher signal, registry blobs): HTTP/2 windows wide enough that a
        // 1 MiB chunk does not wait for a window update (Kestrel's defaults are 1 MiB / 768 KiB).
        builder.Services.Configure<KestrelServerOptions>(k =>
        {
            k.Limits.Http2.InitialConnectionWindowSize = MeshTls.Http2WindowBytes * 2;
            k.Limits.Http2.InitialStreamWindowSize = MeshTls.Http2WindowBytes;
            k.Limits.Http2.MaxFrameSize = 1 << 20;
        });
        builder.Services.AddGrpc(options =>
        {
            options.MaxReceiveMessageSize = limit;
            options.MaxSendMessageSize = limit;
            options.Interceptors.Add<BearerTokenInterceptor>();
            options.Interceptors.Add<ExceptionInterceptor>();
        });
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcHealthChecks().AddCheck("self", () => Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy());

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(serviceName))
            .WithTracing(t => t.AddSource(MeshTelemetry.Name, "Grpc.Net.Client").AddAspNetCoreInstrumentation().AddHttpClientInstrumentation())
            .WithMetrics(m => m.AddMeter(MeshTelemetry.Name).AddMeter("Distill.Mesh.*").AddAspNetCoreInstrumentation());
        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
            telemetry.UseOtlpExporter();
        return builder;
    }

    /// <summary>Maps grpc.health.v1 and server reflection.</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        return app;
    }
}
