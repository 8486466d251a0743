namespace Distill.Mesh.Modeling.Adapters;

/// <summary>
/// A PEFT adapter folder and the base model folder it applies to, found from an adapter folder or
/// a LoRA training run's output folder (whose <c>adapter/</c> the trainer writes).
/// </summary>
/// <param name="AdapterFolder">Folder with adapter_config.json and adapter_model.safetensors.</param>
/// <param name="BaseFolder">HF model folder of the base model.</param>
public sealed record AdapterSource(string AdapterFolder, string BaseFolder)
{
    /// <summary>Where a training run puts its adapter, inside its output folder.</summary>
    public const string RunAdapterFolder = "adapter";

    /// <summary>
    /// Finds the adapter in <paramref name="adapterOrRun"/> (the folder itself, or its
    /// <c>adapter/</c>), and the base: <paramref name="baseFolder"/> when given, else
    /// adapter_config.json's base_model_name_or_path. A relative base path is taken from the
    /// current folder, as PEFT does and as <c>distill extract</c> records <c>--student</c>; the
    /// trainer records absolute paths.
    /// </summary>
    public static AdapterSource Resolve(string adapterOrRun, string? baseFolder = null)
    {
        if (!Directory.Exists(adapterOrRun))
            throw new FileNotFoundException($"no adapter folder or run folder at '{adapterOrRun}'");
        string adapter;
        if (File.Exists(Path.Combine(adapterOrRun, LoraAdapter.ConfigFileName)))
            adapter = adapterOrRun;
        else if (File.Exists(Path.Combine(adapterOrRun, RunAdapterFolder, LoraAdapter.ConfigFileName)))
            adapter = Path.Combine(adapterOrRun, RunAdapterFolder);
        else if (File.Exists(Path.Combine(adapterOrRun, "model", "config.json")))
            throw new FileNotFoundException($"'{adapterOrRun}' is a full fine-tuning run: its model/ is already a complete HF model folder, with no adapter to merge");
        else
            throw new FileNotFoundException($"no {LoraAdapter.ConfigFileName} in '{adapterOrRun}' or in its {RunAdapterFolder}/ (give a PEFT adapter folder, or the output folder of a finished LoRA run)");

        if (baseFolder is not null)
            return new AdapterSource(adapter, RequireModel(baseFolder, $"base model '{baseFolder}'"));
        var named = LoraAdapter.ReadConfig(adapter).BaseModelNameOrPath;
        if (string.IsNullOrWhiteSpace(named))
            throw new FileNotFoundException($"{Path.Combine(adapter, LoraAdapter.ConfigFileName)} names no base_model_name_or_path; give the base model folder");
        var full = Path.GetFullPath(named);
        return new AdapterSource(adapter, RequireModel(full,
            $"base model '{named}' (base_model_name_or_path of {Path.Combine(adapter, LoraAdapter.ConfigFileName)}{(Path.IsPathRooted(named) ? "" : $", from the current folder: {full}")}; no model hub is reachable, so give the base model folder if it is elsewhere)"));
    }

    private static string RequireModel(string folder, string what)
    {
        if (!Directory.Exists(folder))
            throw new FileNotFoundException($"{what}: no such folder");
        if (!File.Exists(Path.Combine(folder, "config.json")))
            throw new FileNotFoundException($"{what}: no config.json (not an HF model folder)");
        return folder;
    }
}
