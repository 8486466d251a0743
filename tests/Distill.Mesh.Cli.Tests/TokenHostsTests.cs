using Distill.Mesh.Contracts.Registry.V1;
using Distill.Mesh.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Cli.Tests;

/// <summary>The mesh token follows a spec's addresses only inside the mesh.</summary>
public sealed class TokenHostsTests
{
    [Theory]
    [InlineData("http://127.0.0.1:5000", true)]
    [InlineData("http://localhost:5000", true)]
    [InlineData("http://[::1]:5000", true)]
    [InlineData("http://registry:80", true)]
    [InlineData("http://distill-teacher-a1b2.team.svc:8080", true)]
    [InlineData("https://registry.team.svc.cluster.local", true)]
    [InlineData("http://teacher.example.com:8080", false)]
    [InlineData("http://203.0.113.7:8080", false)]
    [InlineData("http://10.0.0.5:8080", false)]
    [InlineData("http://svc.evil.com", false)]
    [InlineData("http://cluster.local.evil.com", false)]
    [InlineData("not a url", false)]
    public void Default_hosts(string address, bool allowed) => Assert.Equal(allowed, TokenHosts.Allows(address, []));

    [Theory]
    [InlineData("http://teacher.example.com:8080", "teacher.example.com", true)]
    [InlineData("http://a.gpu.example.com", "*.gpu.example.com", true)]
    [InlineData("http://gpu.example.com", "*.gpu.example.com", false)]
    [InlineData("http://agpu.example.com", "*.gpu.example.com", false)]
    [InlineData("http://10.0.0.5:8080", "10.0.0.5", true)]
    [InlineData("http://10.0.0.6:8080", "10.0.0.5", false)]
    public void Listed_hosts(string address, string pattern, bool allowed) => Assert.Equal(allowed, TokenHosts.Allows(address, [pattern]));

    [Fact]
    public async Task Channels_to_outside_hosts_carry_no_token()
    {
        var inside = new RecordingHandler();
        var outside = new RecordingHandler();
        var handlers = new Dictionary<string, HttpMessageHandler> { ["http://registry"] = inside, ["http://collector.example.com"] = outside };
        using var channels = new MeshChannels(Options.Create(new MeshOptions { AuthToken = "s3cret" }), handlers);

        foreach (var address in handlers.Keys)
        {
            var client = new RegistryService.RegistryServiceClient(channels.For(address));
            await Assert.ThrowsAnyAsync<Grpc.Core.RpcException>(async () => await client.ListAsync(new ListArtifactsRequest()));
        }

        Assert.Equal("Bearer s3cret", inside.Authorization);
        Assert.True(outside.Called);
        Assert.Null(outside.Authorization);
        Assert.Equal("s3cret", channels.TokenFor("http://registry"));
        Assert.Null(channels.TokenFor("http://collector.example.com"));
    }

    private sealed class RecordingHandler : HttpMessageHandler
    {
        public bool Called { get; private set; }

        public string? Authorization { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Called = true;
            Authorization = request.Headers.TryGetValues(MeshAuth.Header, out var values) ? string.Join(",", values) : null;
            return Task.FromResult(new HttpResponseMessage(System.Net.HttpStatusCode.NotFound) { RequestMessage = request });
        }
    }
}
