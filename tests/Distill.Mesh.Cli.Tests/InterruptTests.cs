using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Distill.Mesh.Testing;

namespace Distill.Mesh.Cli.Tests;

/// <summary>Ctrl-C reaches a running `distill` process once: it stops cleanly, exit code 130.</summary>
public sealed partial class InterruptTests : IDisposable
{
    private readonly TempFolder _dir = new();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    private const int Sigint = 2;

    [Fact]
    public async Task CtrlC_in_extract_stops_at_a_tensor_boundary_leaving_no_lock_and_no_trace()
    {
        // Wide enough that the exact SVD of each tensor takes a noticeable time.
        var config = JsonNode.Parse(File.ReadAllText(TinyModels.ConfigPath("tiny-llama.json")))!;
        config["hidden_size"] = 512;
        config["intermediate_size"] = 2048;
        config["num_hidden_layers"] = 3;
        config["num_attention_heads"] = 8;
        config["num_key_value_heads"] = 8;
        File.WriteAllText(_dir.Combine("config.json"), config.ToJsonString());
        foreach (var (name, seed) in new[] { ("teacher", "1"), ("student", "2") })
            Assert.Equal(0, (await CliRunner.Run("init", "--config", _dir.Combine("config.json"), "--out", _dir.Combine(name), "--seed", seed)).Code);

        var cli = Path.Combine(AppContext.BaseDirectory, "distill.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { cli, "extract", "--teacher", _dir.Combine("teacher"), "--student", _dir.Combine("student"), "--out", _dir.Combine("lora"), "--rank", "8", "--svd", "exact" })
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var error = new System.Text.StringBuilder();
        var firstTensor = new TaskCompletionSource();
        process.ErrorDataReceived += (_, e) =>
        {
            lock (error)
                error.AppendLine(e.Data);
            if (e.Data?.Contains("shard 0: 1/", StringComparison.Ordinal) == true)
                firstTensor.TrySetResult();
        };
        process.BeginErrorReadLine();
        var output = process.StandardOutput.ReadToEndAsync();
        await firstTensor.Task.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(0, Kill(process.Id, Sigint));
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        await output;

        var log = error.ToString();
        Assert.True(process.ExitCode == 130, $"exit {process.ExitCode}: {log}");
        Assert.Contains("stopping at the next safe point", log);
        Assert.Contains("cancelled", log);
        Assert.DoesNotContain("Unhandled", log);
        Assert.DoesNotContain("   at ", log);
        Assert.Empty(Directory.EnumerateFiles(_dir.Combine("lora"), "*.lock", SearchOption.AllDirectories));
        Assert.False(File.Exists(_dir.Combine("lora", "adapter_model.safetensors")), "the interrupted extraction must not look finished");
    }

    public void Dispose() => _dir.Dispose();
}
