using Distill.Mesh.Modeling.Generation;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Cli.Tests;

public sealed class CommandTests : IDisposable
{
    private readonly TempFolder _dir = new();

    private string ModelFolder => _dir.Combine("model");

    private async Task InitTinyModel(string family = "llama")
    {
        var (code, output, error) = await CliRunner.Run("init", "--config", TinyModels.ConfigPath($"tiny-{family}.json"), "--out", ModelFolder, "--seed", "3");
        Assert.True(code == 0, error);
        Assert.Contains("wrote", output);
    }

    [Fact]
    public async Task InitThenInspect_ReportsTheLayoutAndThatItLoads()
    {
        await InitTinyModel("mixtral");

        var report = await CliRunner.Json("inspect", "--model", ModelFolder, "--json");

        Assert.Equal("mixtral", report["model_type"]!.GetValue<string>());
        Assert.Equal(4, report["experts"]!.GetValue<int>());
        Assert.True(report["loadable"]!.GetValue<bool>());
        using var model = CausalLanguageModel.FromPretrained(ModelFolder);
        Assert.Equal(model.ParameterCount(), report["parameters"]!.GetValue<long>());
        Assert.True(File.Exists(_dir.Combine("model", "tokenizer.json")));
    }

    [Fact]
    public async Task Generate_Greedy_PrintsWhatTheLibraryGenerates()
    {
        await InitTinyModel();

        var result = await CliRunner.Json("generate", "--model", ModelFolder, "--prompt", "Hi there", "--max-new-tokens", "5", "--greedy", "--json");

        var tokenizer = TokenizerLoader.Load(ModelFolder);
        var prompt = tokenizer.Encode("Hi there", addSpecialTokens: true);
        Assert.Equal(prompt, result["prompt_ids"]!.AsArray().Select(n => n!.GetValue<int>()));
        Assert.Equal(256, prompt[0]); // BOS from tokenizer_config.json
        using var model = CausalLanguageModel.FromPretrained(ModelFolder);
        var expected = TextGenerator.Generate(model, [prompt], new GenerationOptions { Greedy = true, MaxNewTokens = 5, StopTokenIds = new HashSet<int> { 257, 259 } })[0];
        Assert.Equal(expected.Tokens, result["ids"]!.AsArray().Select(n => n!.GetValue<int>()));
    }

    [Fact]
    public async Task Logits_TopKAndFullRow_AgreeWithTheModel()
    {
        await InitTinyModel();

        var result = await CliRunner.Json("logits", "--model", ModelFolder, "--ids", "5,9,200", "--top-k", "3", "--full", "--json");

        using var model = CausalLanguageModel.FromPretrained(ModelFolder);
        using var logProbs = model.Forward(torch.tensor(new long[] { 5, 9, 200 }).unsqueeze(0))[0].log_softmax(-1);
        var position = result["positions"]![2]!;
        var top = position["top_ids"]!.AsArray().Select(n => n!.GetValue<long>()).ToArray();
        Assert.Equal(logProbs[2].topk(3).indexes.data<long>().ToArray(), top);
        var row = position["logprobs"]!.AsArray().Select(n => n!.GetValue<double>()).ToArray();
        Assert.Equal(262, row.Length);
        Assert.Equal(1.0, row.Sum(Math.Exp), 1e-4);
        Assert.Equal(logProbs[2, top[0]].item<float>(), position["top_logprobs"]![0]!.GetValue<double>(), 1e-5);
    }

    [Fact]
    public async Task Nll_MeanIsTheCrossEntropyOfTheSequence()
    {
        await InitTinyModel();

        var result = await CliRunner.Json("nll", "--model", ModelFolder, "--ids", "10,20,30,40,50", "--json");

        using var model = CausalLanguageModel.FromPretrained(ModelFolder);
        using var ids = torch.tensor(new long[] { 10, 20, 30, 40, 50 });
        using var logits = model.Forward(ids.unsqueeze(0))[0];
        var expected = nn.functional.cross_entropy(logits.narrow(0, 0, 4), ids.narrow(0, 1, 4)).item<float>();
        Assert.Equal(4, result["tokens"]!.AsArray().Count);
        Assert.Equal(expected, result["mean_nll"]!.GetValue<double>(), 1e-5);
        Assert.Equal(Math.Exp(expected), result["perplexity"]!.GetValue<double>(), 1e-3);
    }

    [Fact]
    public async Task Tokenize_SharedTokenizerAndChat_PrintIdsAndMask()
    {
        var tokenizer = SharedData.PathOf("tokenizers", "llama3");
        var plain = await CliRunner.Json("tokenize", "--tokenizer", tokenizer, "--text", "What about solving an 2x + 3 = 7 equation?", "--json");
        Assert.Equal(new[] { 3923, 922, 22581, 459, 220, 17, 87, 489, 220, 18, 284, 220, 22, 24524, 30 }, plain["ids"]!.AsArray().Select(n => n!.GetValue<int>()));

        File.WriteAllText(_dir.Combine("chat.json"), "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Yo\"}]}");
        var chat = await CliRunner.Json("tokenize", "--tokenizer", tokenizer, "--chat", _dir.Combine("chat.json"), "--json");
        var mask = chat["assistant_mask"]!.AsArray().Select(n => n!.GetValue<bool>()).ToList();
        var tokens = chat["tokens"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.False(mask[0]);
        Assert.Equal(["Yo", "<|eot_id|>"], tokens.Where((_, i) => mask[i]));
    }

    [Theory]
    [InlineData("generate --model {missing} --prompt-ids 1,2", "no config.json")]
    [InlineData("generate --model {model} --prompt-ids 1,9999", "out of range")]
    [InlineData("generate --model {model} --prompt-ids 1,x", "comma-separated token ids")]
    [InlineData("logits --model {model} --ids 1,2 --dtype float8", "unknown dtype 'float8'")]
    [InlineData("generate --model {model} --prompt-ids 1 --top-p 2", "top_p must be in (0, 1]")]
    [InlineData("logits --model {model} --ids 1,2 --device cuda", "CUDA is not available")]
    public async Task BadInput_ExitsWithOneLineError(string commandLine, string expected)
    {
        await InitTinyModel();
        var args = commandLine.Replace("{missing}", _dir.Combine("nowhere")).Replace("{model}", ModelFolder).Split(' ');

        var (code, _, error) = await CliRunner.Run(args);

        Assert.Equal(1, code);
        Assert.StartsWith("error: ", error);
        Assert.Contains(expected, error);
    }

    [Fact]
    public async Task Init_UnsupportedConfig_WritesNothing()
    {
        File.WriteAllText(_dir.Combine("bad.json"), "{\"model_type\": \"bert\"}");

        var (code, _, error) = await CliRunner.Run("init", "--config", _dir.Combine("bad.json"), "--out", ModelFolder);

        Assert.Equal(1, code);
        Assert.Contains("model_type 'bert' is not supported", error);
        Assert.False(Directory.Exists(ModelFolder));
    }

    public void Dispose() => _dir.Dispose();
}
