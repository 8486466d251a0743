using System.CommandLine;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Tokenization;

namespace Distill.Mesh.Cli.Commands;

/// <summary><c>distill init --config C.json --out DIR</c>: a randomly initialised model folder in HF format.</summary>
internal static class InitCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "HF config.json to build the model from", Required = true };
        var output = new Option<string>("--out") { Description = "folder to write", Required = true };
        var seed = new Option<long>("--seed") { Description = "initialisation seed", DefaultValueFactory = _ => 0 };
        var dtype = new Option<string>("--dtype") { Description = "float32 or bfloat16", DefaultValueFactory = _ => "float32" };
        var tokenizer = new Option<string>("--tokenizer")
        {
            Description = "'bytes' writes a byte-level tokenizer (256 bytes + specials); a folder copies its tokenizer files; 'none' writes none",
            DefaultValueFactory = _ => "bytes",
        };
        var command = new Command("init", "Create a randomly initialised model folder (config + safetensors + tokenizer)") { config, output, seed, dtype, tokenizer };
        command.SetAction((parse, console) =>
        {
            var modelConfig = ModelConfigs.Load(parse.GetValue(config)!);
            var folder = parse.GetValue(output)!;
            var tokenizerSource = parse.GetValue(tokenizer)!;
            // Check the tokenizer fits before writing anything.
            var copyFrom = tokenizerSource is "bytes" or "none" ? null : tokenizerSource;
            if (tokenizerSource == "bytes" && modelConfig.VocabSize < ByteTokenizerBuilder.VocabularySize)
                throw new ArgumentException($"vocab_size {modelConfig.VocabSize} is smaller than the byte tokenizer's {ByteTokenizerBuilder.VocabularySize} tokens");
            if (copyFrom is not null && TokenizerLoader.Load(copyFrom).VocabularySize > modelConfig.VocabSize)
                throw new ArgumentException($"the tokenizer in '{copyFrom}' has more tokens than vocab_size {modelConfig.VocabSize}");

            using var model = new CausalLanguageModel(modelConfig, CommandRunner.ParseDType(parse.GetValue(dtype)!));
            model.InitializeWeights(parse.GetValue(seed));
            model.SavePretrained(folder);
            if (tokenizerSource == "bytes")
            {
                ByteTokenizerBuilder.Write(folder);
            }
            else if (copyFrom is not null)
            {
                ModelFolderFiles.Copy(Directory.Exists(copyFrom) ? copyFrom : Path.GetDirectoryName(Path.GetFullPath(copyFrom))!, folder);
            }

            console.WriteLine($"wrote {modelConfig.ModelType} model ({model.ParameterCount():N0} parameters) to {folder}");
            return 0;
        });
        return command;
    }
}
