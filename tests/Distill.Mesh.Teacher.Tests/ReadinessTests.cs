using Distill.Mesh.Contracts.Teacher.V1;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Teacher.Extensions;
using Distill.Mesh.Teacher.Scoring;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Teachers;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Distill.Mesh.Teacher.Tests;

public class ReadinessTests
{
    /// <summary>A warm-up that waits for the test to let it finish.</summary>
    private sealed class GatedWarmUp : ITeacherWarmUp
    {
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task WarmUpAsync(InProcessTeacher teacher, CancellationToken cancellationToken)
        {
            Entered.TrySetResult();
            await Release.Task.WaitAsync(cancellationToken);
            teacher.WarmUp();
        }
    }

    private static async Task<HealthCheckResponse.Types.ServingStatus> Health(GrpcChannel channel, string service) =>
        (await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest { Service = service }, deadline: DateTime.UtcNow.AddSeconds(30))).Status;

    [Fact]
    public async Task Teacher_IsLiveButNotReady_UntilItsModelIsLoadedAndWarmedUp()
    {
        using var dir = new TempFolder();
        using (var model = TinyModels.Create("llama", seed: 21))
            TinyModels.SaveWithByteTokenizer(model, dir.Combine("teacher"));
        var warmUp = new GatedWarmUp();
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Teacher:Model"] = dir.Combine("teacher") });
        builder.Services.AddSingleton<ITeacherWarmUp>(warmUp);
        builder.AddTeacherService();
        await using var app = builder.Build();
        app.MapDefaultEndpoints();
        app.MapTeacherService();
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        using var channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = app.GetTestServer().CreateHandler() });
        var teacher = new TeacherService.TeacherServiceClient(channel);

        await warmUp.Entered.Task.WaitAsync(TimeSpan.FromSeconds(60)); // loaded, warming up
        var live = await Health(channel, MeshHealth.LivenessService);
        var readyBefore = await Health(channel, MeshHealth.ReadinessService);
        var defaultBefore = await Health(channel, "");
        var refused = await Assert.ThrowsAsync<RpcException>(() => teacher.DescribeAsync(new DescribeRequest(), deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);
        warmUp.Release.SetResult();
        await MeshHealth.WaitUntilReadyAsync(app.Services, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        var readyAfter = await Health(channel, MeshHealth.ReadinessService);
        var described = await teacher.DescribeAsync(new DescribeRequest(), deadline: DateTime.UtcNow.AddSeconds(30));

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, live);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, readyBefore);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, defaultBefore);
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, readyAfter);
        Assert.Equal(InProcessTeacher.Fingerprint(dir.Combine("teacher")), described.Fingerprint);
        await app.StopAsync();
    }

    [Fact]
    public async Task Teacher_WhoseModelCannotLoad_StopsAndNamesTheProblem()
    {
        using var dir = new TempFolder();
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Teacher:Model"] = dir.Combine("missing") });
        builder.AddTeacherService();
        await using var app = builder.Build();
        app.MapDefaultEndpoints();
        app.MapTeacherService();
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => MeshHealth.WaitUntilReadyAsync(app.Services, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.Contains("missing", error.Message);
        Assert.Equal(1, Environment.ExitCode);
        Environment.ExitCode = 0;
    }
}
