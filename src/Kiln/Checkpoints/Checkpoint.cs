using System.Text.Json.Nodes;
using Kiln.Checkpoints.Gguf;
using Kiln.Weights;

namespace Kiln.Checkpoints;

/// <summary>
/// A Hugging Face checkpoint folder: config.json, optional generation and tokenizer files, and the
/// weights in <c>model.safetensors</c> or in shards listed by <c>model.safetensors.index.json</c>.
/// Or a GGUF file (<see cref="GgufCheckpoint"/>), read as the Hugging Face checkpoint it stands for: a
/// config from its metadata, its tensors under their Hugging Face names.
/// Opening reads headers only; the weight files stay memory-mapped until <see cref="Dispose"/>.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    public const string ConfigFileName = "config.json";
    public const string GenerationConfigFileName = "generation_config.json";
    public const string SingleWeightsFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly IReadOnlyList<MappedFile> _files;
    private readonly Dictionary<string, MappedFile> _fileByPath;
    private readonly IReadOnlyDictionary<string, IReadOnlyList<RecipeStep>> _storageSteps;

    private Checkpoint(string directory, JsonObject config, JsonObject? generationConfig, IReadOnlyList<MappedFile> files,
        IReadOnlyDictionary<string, TensorInfo> tensors)
        : this(directory, System.IO.Path.Combine(directory, ConfigFileName), config, generationConfig, files, tensors, new Dictionary<string, IReadOnlyList<RecipeStep>>(), null)
    {
        TokenizerPath = ExistingFile("tokenizer.json");
        TokenizerConfigPath = ExistingFile("tokenizer_config.json");
    }

    /// <summary>A checkpoint of already opened files (<see cref="GgufCheckpoint"/>); it takes them over.</summary>
    internal Checkpoint(string directory, string configPath, JsonObject config, JsonObject? generationConfig, IReadOnlyList<MappedFile> files,
        IReadOnlyDictionary<string, TensorInfo> tensors, IReadOnlyDictionary<string, IReadOnlyList<RecipeStep>> storageSteps, GgufFile? gguf)
    {
        Directory = directory;
        ConfigPath = configPath;
        Config = config;
        GenerationConfig = generationConfig;
        _files = files;
        _fileByPath = files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        Tensors = tensors;
        _storageSteps = storageSteps;
        Gguf = gguf;
        WeightFiles = files.Select(f => (System.IO.Path.GetFileName(f.Path), f.Length)).ToList();
    }

    /// <summary>The folder, as given to <see cref="Open"/> (for a GGUF file, the folder that holds it).</summary>
    public string Directory { get; }

    /// <summary>Path of config.json (for a GGUF file, the file), the name errors about its fields start with.</summary>
    public string ConfigPath { get; }

    /// <summary>The GGUF file the checkpoint was read from, or null for a Hugging Face folder.</summary>
    public GgufFile? Gguf { get; }

    /// <summary>Path of generation_config.json (which may not exist).</summary>
    public string GenerationConfigPath => System.IO.Path.Combine(Directory, GenerationConfigFileName);

    /// <summary>config.json.</summary>
    public JsonObject Config { get; }

    /// <summary>generation_config.json, or null when the folder has none.</summary>
    public JsonObject? GenerationConfig { get; }

    /// <summary>Path of tokenizer.json, or null when absent.</summary>
    public string? TokenizerPath { get; }

    /// <summary>Path of tokenizer_config.json, or null when absent.</summary>
    public string? TokenizerConfigPath { get; }

    /// <summary>Every tensor of every weight file, by name.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }

    /// <summary>The weight files (name relative to <see cref="Directory"/>, size in bytes), in the order opened.</summary>
    public IReadOnlyList<(string RelativeName, long Size)> WeightFiles { get; }

    /// <summary>
    /// Opens <paramref name="path"/>: a Hugging Face folder, a GGUF file, or a folder that holds one GGUF file and no
    /// config.json (<see cref="GgufCheckpoint.Find"/>); throws <see cref="KilnException"/> naming the file and field at fault.
    /// </summary>
    public static Checkpoint Open(string path) =>
        GgufCheckpoint.Find(path) is { } gguf ? GgufCheckpoint.Open(gguf) : OpenFolder(path);

    private static Checkpoint OpenFolder(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            throw new KilnException($"{directory}: checkpoint folder not found");
        }
        var configPath = System.IO.Path.Combine(directory, ConfigFileName);
        var config = JsonFile.ReadObject(configPath)
            ?? throw new KilnException($"{configPath}: file not found (a Hugging Face checkpoint needs {ConfigFileName})");
        var generationConfig = JsonFile.ReadObject(System.IO.Path.Combine(directory, GenerationConfigFileName));

        var files = new List<SafetensorsFile>();
        try
        {
            var tensors = OpenWeights(directory, files);
            return new Checkpoint(directory, config, generationConfig, [.. files.Select(f => f.Mapping)], tensors);
        }
        catch
        {
            foreach (var file in files) file.Dispose();
            throw;
        }
    }

    /// <summary>The tensor named <paramref name="name"/>; throws <see cref="KilnException"/> naming it when absent.</summary>
    public TensorInfo Tensor(string name) =>
        Tensors.TryGetValue(name, out var tensor)
            ? tensor
            : throw KilnException.InFile(Directory, name, "tensor not found in the checkpoint");

    /// <summary>
    /// The steps that turn the named tensor as stored into the Hugging Face tensor of that name, which a
    /// parameter's recipe starts with: llama.cpp's row order of a GGUF file's q and k projections undone
    /// (<see cref="DeinterleaveRowsStep"/>); none for a Hugging Face folder.
    /// </summary>
    public IReadOnlyList<RecipeStep> StorageSteps(string name) => _storageSteps.GetValueOrDefault(name) ?? [];

    /// <summary>The open file that holds <paramref name="tensor"/>.</summary>
    public MappedFile FileOf(TensorInfo tensor) =>
        _fileByPath.TryGetValue(tensor.File, out var file)
            ? file
            : throw new ArgumentException($"{tensor.Name} ({tensor.File}) is not a tensor of {Directory}", nameof(tensor));

    /// <summary>The open weight file at <paramref name="path"/> (a path its tensors give as their file).</summary>
    public MappedFile FileAt(string path) =>
        _fileByPath.TryGetValue(path, out var file) ? file : throw new ArgumentException($"{path} is not a weight file of {Directory}", nameof(path));

    /// <summary>The named tensor's bytes, a view of the mapped file.</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var tensor = Tensor(name);
        return FileOf(tensor).GetBytes(tensor);
    }

    /// <summary>Address of the named tensor's first byte; valid until the checkpoint is disposed.</summary>
    public nint GetPointer(string name)
    {
        var tensor = Tensor(name);
        return FileOf(tensor).GetPointer(tensor);
    }

    public void Dispose()
    {
        foreach (var file in _files) file.Dispose();
    }

    private string? ExistingFile(string name)
    {
        var path = System.IO.Path.Combine(Directory, name);
        return File.Exists(path) ? path : null;
    }

    /// <summary>Opens the weight files into <paramref name="opened"/> (so the caller can close them on failure) and merges their tensors.</summary>
    private static Dictionary<string, TensorInfo> OpenWeights(string directory, List<SafetensorsFile> opened)
    {
        var indexPath = System.IO.Path.Combine(directory, IndexFileName);
        var singlePath = System.IO.Path.Combine(directory, SingleWeightsFileName);
        Dictionary<string, string>? weightMap = null;
        // The single file wins when both exist, as in transformers.
        if (File.Exists(singlePath))
        {
            opened.Add(SafetensorsFile.Open(singlePath));
        }
        else if (File.Exists(indexPath))
        {
            weightMap = ReadWeightMap(indexPath);
            foreach (var shard in weightMap.Values.Distinct().Order(StringComparer.Ordinal))
            {
                var shardPath = System.IO.Path.Combine(directory, shard);
                if (!File.Exists(shardPath))
                {
                    throw KilnException.InFile(indexPath, "weight_map", $"shard {shard} not found ({shardPath})");
                }
                opened.Add(SafetensorsFile.Open(shardPath));
            }
        }
        else
        {
            throw new KilnException($"{directory}: no weights: neither {SingleWeightsFileName} nor {IndexFileName} found");
        }

        var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var file in opened)
        {
            foreach (var tensor in file.Tensors.Values)
            {
                if (!tensors.TryAdd(tensor.Name, tensor))
                {
                    throw KilnException.InFile(file.Path, tensor.Name, $"tensor also stored in {tensors[tensor.Name].File}");
                }
            }
        }
        if (weightMap != null) CheckIndexAgrees(directory, indexPath, weightMap, tensors);
        return tensors;
    }

    /// <summary>The index decides where each tensor is: every listed tensor is in its shard, and no shard holds an unlisted one.</summary>
    private static void CheckIndexAgrees(string directory, string indexPath, Dictionary<string, string> weightMap, Dictionary<string, TensorInfo> tensors)
    {
        foreach (var (name, shard) in weightMap)
        {
            var shardPath = System.IO.Path.Combine(directory, shard);
            if (!tensors.TryGetValue(name, out var tensor) || tensor.File != shardPath)
            {
                throw KilnException.InFile(indexPath, $"weight_map.{name}", $"tensor not found in shard {shard}");
            }
        }
        var unlisted = tensors.Values.FirstOrDefault(t => !weightMap.ContainsKey(t.Name));
        if (unlisted != null)
        {
            throw KilnException.InFile(indexPath, "weight_map", $"does not list tensor {unlisted.Name} of shard {System.IO.Path.GetFileName(unlisted.File)}");
        }
    }

    private static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        var index = JsonFile.ReadObject(indexPath)!;
        if (index["weight_map"] is not JsonObject map)
        {
            throw KilnException.InFile(indexPath, "weight_map", "missing or not an object");
        }
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in map)
        {
            if (value is not JsonValue v || !v.TryGetValue<string>(out var shard) || !IsPlainFileName(shard))
            {
                throw KilnException.InFile(indexPath, $"weight_map.{name}", $"expected the file name of a shard in this folder, found {value?.ToJsonString() ?? "null"}");
            }
            result[name] = shard;
        }
        if (result.Count == 0) throw KilnException.InFile(indexPath, "weight_map", "lists no tensors");
        return result;
    }

    /// <summary>A shard must be a file of the folder itself: an index must not point elsewhere on disk.</summary>
    private static bool IsPlainFileName(string name) =>
        name.Length > 0 && name != "." && name != ".." && name.IndexOfAny(['/', '\\', '\0']) < 0;
}
