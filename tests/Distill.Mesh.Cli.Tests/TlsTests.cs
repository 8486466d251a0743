using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Distill.Mesh.Cli.Hosting;
using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Controller.Extensions;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Testing;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Cli.Tests;

public sealed class TlsTests : IDisposable
{
    private readonly TempFolder _dir = new();

    /// <summary>A self-signed certificate for localhost / 127.0.0.1, written as PEM certificate + key.</summary>
    private (string Certificate, string Key) SelfSigned(string name, string host = "localhost")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={host}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(host);
        if (host == "localhost")
            names.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var certificatePath = _dir.Combine($"{name}.pem");
        var keyPath = _dir.Combine($"{name}.key");
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certificatePath, keyPath);
    }

    private Task<(Microsoft.AspNetCore.Builder.WebApplication App, string Address)> StartController(string certificate, string key) =>
        ServiceHost.StartAsync(0, b => b.AddControllerService(), a => a.MapControllerService(),
            new Dictionary<string, string?> { ["Mesh:TlsCertificate"] = certificate, ["Mesh:TlsKey"] = key, ["Controller:RunsDirectory"] = _dir.Combine("controller") },
            quiet: true, default);

    [Fact]
    public async Task Https_TrustedSelfSignedCertificate_Accepted_UntrustedOrPlainRefused()
    {
        var (certificate, key) = SelfSigned("server");
        var (app, address) = await StartController(certificate, key);
        await using (app)
        {
            Assert.StartsWith("https://", address);

            // The mesh's shared channels trust the configured PEM.
            using (var channels = new MeshChannels(Options.Create(new MeshOptions { TlsTrust = certificate })))
            {
                var runs = await new RunsService.RunsServiceClient(channels.For(address)).ListAsync(new ListRunsRequest(), deadline: DateTime.UtcNow.AddSeconds(30));
                Assert.Empty(runs.Runs);
            }

            // Without the trust file the self-signed certificate is refused.
            using (var untrusted = MeshTls.CreateChannel(address, trustPath: null))
            {
                var e = await Assert.ThrowsAsync<RpcException>(() => new RunsService.RunsServiceClient(untrusted).ListAsync(new ListRunsRequest(), deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);
                Assert.True(Refused(e), e.ToString());
            }

            // Trusting another certificate does not help either.
            var (other, _) = SelfSigned("other");
            using (var wrong = MeshTls.CreateChannel(address, other))
            {
                var e = await Assert.ThrowsAsync<RpcException>(() => new RunsService.RunsServiceClient(wrong).ListAsync(new ListRunsRequest(), deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);
                Assert.True(Refused(e), e.ToString());
            }

            // Plain HTTP/2 to the TLS port gets no answer.
            using (var plain = MeshTls.CreateChannel(address.Replace("https://", "http://"), trustPath: null))
                await Assert.ThrowsAsync<RpcException>(() => new RunsService.RunsServiceClient(plain).ListAsync(new ListRunsRequest(), deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);

            // The CLI takes the same trust file.
            var (code, output, error) = await CliRunner.Run("run", "ls", "--controller", address, "--tls-trust", certificate);
            Assert.True(code == 0, error);
            Assert.Contains("no runs", output);
            await app.StopAsync();
        }
    }

    [Fact]
    public async Task Https_CertificateForAnotherHost_RefusedEvenWhenTrusted()
    {
        var (certificate, key) = SelfSigned("elsewhere", host: "teacher.example");
        var (app, address) = await StartController(certificate, key);
        await using (app)
        {
            using var channel = MeshTls.CreateChannel(address, certificate);
            var e = await Assert.ThrowsAsync<RpcException>(() => new RunsService.RunsServiceClient(channel).ListAsync(new ListRunsRequest(), deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);
            Assert.True(Refused(e), e.ToString());
            await app.StopAsync();
        }
    }

    [Fact]
    public void LoadServerCertificate_BadSettings_NameTheProblem()
    {
        var (certificate, _) = SelfSigned("server");
        var missingKey = Assert.Throws<InvalidOperationException>(() => MeshTls.LoadServerCertificate(new MeshOptions { TlsCertificate = certificate }));
        Assert.Contains("Mesh:TlsKey", missingKey.Message);
        var missingFile = Assert.Throws<FileNotFoundException>(() => MeshTls.LoadServerCertificate(new MeshOptions { TlsCertificate = _dir.Combine("absent.pem"), TlsKey = certificate }));
        Assert.Contains("absent.pem", missingFile.Message);
        File.WriteAllText(_dir.Combine("garbage.pem"), "not a certificate");
        var garbage = Assert.Throws<InvalidOperationException>(() => MeshTls.LoadServerCertificate(new MeshOptions { TlsCertificate = _dir.Combine("garbage.pem"), TlsKey = _dir.Combine("garbage.pem") }));
        Assert.Contains("garbage.pem", garbage.Message);
        Assert.Null(MeshTls.LoadServerCertificate(new MeshOptions()));
    }

    /// <summary>The handshake failed on certificate validation (not some other error).</summary>
    private static bool Refused(RpcException e)
    {
        for (Exception? inner = e.Status.DebugException; inner is not null; inner = inner.InnerException)
            if (inner is System.Security.Authentication.AuthenticationException)
                return true;
        return false;
    }

    public void Dispose() => _dir.Dispose();
}
