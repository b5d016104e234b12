using Kiln.Checkpoints.Gguf;
using Tokenizers.DotNet;
using NativeTokenizer = Tokenizers.DotNet.Tokenizer;

namespace Kiln.Runtime;

/// <summary>
/// Text to token ids and back, as transformers' fast tokenizer does it for a model folder, or for a GGUF
/// file from its tokenizer metadata (<see cref="GgufTokenizerJson"/>).
/// </summary>
/// <remarks>
/// Normalization, pre-tokenization, the BPE model (merges, byte fallback, byte-level) and the decoder run in
/// Hugging Face's own Rust tokenizers library (0.22.2, through Tokenizers.DotNet 1.4.1), which loads any
/// tokenizer.json and matched SentencePiece on the default model. Its .NET API only offers Encode with the
/// post-processor always on and Decode with special tokens always skipped, so we hand it a copy of
/// tokenizer.json without the post-processor and with no token marked special, and do those two steps here.
/// </remarks>
public sealed class Tokenizer : IDisposable
{
    private readonly NativeTokenizer core;
    private readonly string file;
    private readonly int[] prefix;
    private readonly int[] suffix;
    private bool disposed;

    private Tokenizer(NativeTokenizer core, string file, TokenizerFacts facts)
    {
        this.core = core;
        this.file = file;
        prefix = facts.Prefix;
        suffix = facts.Suffix;
        VocabSize = facts.VocabSize;
        BosId = facts.BosId;
        EosId = facts.EosId;
        SpecialIds = facts.SpecialIds.ToHashSet();
    }

    /// <summary>One more than the largest id of the vocabulary and the added tokens.</summary>
    public int VocabSize { get; }

    public int? BosId { get; }

    public int? EosId { get; }

    /// <summary>Added tokens marked special; <see cref="Decode"/> leaves them out by default.</summary>
    public IReadOnlySet<int> SpecialIds { get; }

    /// <summary>
    /// The tokenizer of the model at <paramref name="model"/> (a folder or a GGUF file, as <c>--model</c> takes them):
    /// tokenizer.json (required) and tokenizer_config.json (optional) from a Hugging Face folder, or the GGUF file's
    /// tokenizer metadata.
    /// </summary>
    public static Tokenizer Load(string model)
    {
        var (source, facts, coreJson) = Prepare(model);
        return FromPrepared(source, facts, coreJson);
    }

    /// <summary>The model's tokenizer (<see cref="Load"/>), or null when it has none: no tokenizer.json, or no tokenizer metadata.</summary>
    public static Tokenizer? TryLoad(string model) => TryPrepare(model) is var (source, facts, coreJson) ? FromPrepared(source, facts, coreJson) : null;

    /// <summary>Refuses, with <see cref="Load"/>'s error, a model without a tokenizer: before a long load rather than after it.</summary>
    public static void EnsurePresent(string model)
    {
        if (!IsPresent(model)) throw Absent(model);
    }

    private static KilnException Absent(string model) => GgufCheckpoint.Find(model) is { } gguf
        ? KilnException.InFile(gguf, $"metadata '{GgufTokenizerJson.ModelKey}'", "absent; text prompts need the model's tokenizer")
        : new KilnException($"{Path.Combine(model, TokenizerJson.FileName)}: not found; text prompts need the model's tokenizer");

    /// <summary>Whether <see cref="Load"/> finds a tokenizer for <paramref name="model"/>: a tokenizer.json, or a GGUF file's tokenizer metadata.</summary>
    public static bool IsPresent(string model)
    {
        if (GgufCheckpoint.Find(model) is not { } gguf) return File.Exists(Path.Combine(model, TokenizerJson.FileName));
        using var file = GgufFile.Open(gguf);
        return file.Metadata.Has(GgufTokenizerJson.ModelKey);
    }

    /// <summary>
    /// What loading the tokenizer of <paramref name="model"/> reads and checks: the file it comes from, the
    /// facts Kiln applies itself, and the JSON handed to Hugging Face's library (<see cref="FromPrepared"/>).
    /// </summary>
    public static (string Source, TokenizerFacts Facts, string CoreJson) Prepare(string model) => TryPrepare(model) ?? throw Absent(model);

    // Prepare, or null for a model without a tokenizer (a GGUF file is opened once either way).
    private static (string Source, TokenizerFacts Facts, string CoreJson)? TryPrepare(string model)
    {
        if (GgufCheckpoint.Find(model) is { } gguf)
        {
            using var file = GgufFile.Open(gguf);
            if (GgufTokenizerJson.Read(file.Metadata) is not { } fromGguf) return null;
            return (gguf, new TokenizerFacts(fromGguf.Prefix, fromGguf.Suffix, fromGguf.VocabSize, fromGguf.BosId, fromGguf.EosId, [.. fromGguf.SpecialIds.Order()]),
                fromGguf.CoreJson);
        }
        var jsonPath = Path.Combine(model, TokenizerJson.FileName);
        if (!File.Exists(jsonPath)) return null;
        var json = TokenizerJson.Read(jsonPath);
        var configPath = Path.Combine(model, TokenizerConfig.FileName);
        var config = TokenizerConfig.Read(configPath);

        var bosId = TokenId(configPath, "bos_token", config.BosToken, json) ?? SingleOrNull(json.Template.Prefix);
        var eosId = TokenId(configPath, "eos_token", config.EosToken, json) ?? SingleOrNull(json.Template.Suffix);
        var prefix = Override(configPath, "add_bos_token", json.Template.Prefix, config.AddBosToken, bosId, atStart: true);
        var suffix = Override(configPath, "add_eos_token", json.Template.Suffix, config.AddEosToken, eosId, atStart: false);
        return (jsonPath, new TokenizerFacts(prefix, suffix, json.VocabSize, bosId, eosId, [.. json.SpecialIds.Order()]), json.CoreJson);
    }

    /// <summary>A tokenizer from what <see cref="Prepare"/> made; errors name <paramref name="source"/>.</summary>
    public static Tokenizer FromPrepared(string source, TokenizerFacts facts, string coreJson) =>
        new(LoadCore(source, coreJson), source, facts);

    /// <summary>
    /// A tokenizer from what <see cref="Prepare"/> made, its core JSON already in the file <paramref name="coreJsonPath"/>
    /// (where a cache keeps it): Hugging Face's library loads it in place. Errors name <paramref name="source"/>.
    /// </summary>
    public static Tokenizer FromPreparedFile(string source, TokenizerFacts facts, string coreJsonPath) =>
        new(LoadNative(source, coreJsonPath), source, facts);

    /// <summary>
    /// Token ids of <paramref name="text"/>, with BOS/EOS as the model's tokenizer adds them, or without
    /// them (<paramref name="addSpecialTokens"/> false: text that already holds them, such as a rendered chat template).
    /// </summary>
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        uint[] ids;
        try
        {
            ids = core.Encode(text);
        }
        catch (TokenizerException e)
        {
            throw new KilnException($"{file}: cannot encode the text: {e.Message.ReplaceLineEndings(" ")}", e);
        }
        var (before, after) = addSpecialTokens ? (prefix, suffix) : (Array.Empty<int>(), Array.Empty<int>());
        var result = new int[before.Length + ids.Length + after.Length];
        before.CopyTo(result, 0);
        for (var i = 0; i < ids.Length; i++) result[before.Length + i] = checked((int)ids[i]);
        after.CopyTo(result, before.Length + ids.Length);
        return result;
    }

    /// <summary>The text of <paramref name="ids"/>; ids the tokenizer does not know are left out, as Hugging Face does.</summary>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = true)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var kept = new List<uint>(ids.Count);
        foreach (var id in ids)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(id, nameof(ids));
            if (!skipSpecialTokens || !SpecialIds.Contains(id)) kept.Add((uint)id);
        }
        if (kept.Count == 0) return "";
        try
        {
            return core.Decode([.. kept]);
        }
        catch (TokenizerException e)
        {
            throw new KilnException($"{file}: cannot decode token ids: {e.Message.ReplaceLineEndings(" ")}", e);
        }
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        core.Dispose();
    }

    // The native library only loads from a path, so the edited JSON goes through a temporary file.
    private static NativeTokenizer LoadCore(string source, string coreJson)
    {
        var dir = Directory.CreateTempSubdirectory("kiln-tokenizer-");
        try
        {
            var path = Path.Combine(dir.FullName, TokenizerJson.FileName);
            File.WriteAllText(path, coreJson);
            return LoadNative(source, path);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static NativeTokenizer LoadNative(string source, string coreJsonPath)
    {
        try
        {
            return new NativeTokenizer(coreJsonPath);
        }
        catch (TokenizerException e)
        {
            throw new KilnException($"{source}: Hugging Face tokenizers cannot load it: {e.Message.ReplaceLineEndings(" ")}", e);
        }
    }

    private static int? TokenId(string configPath, string field, string? token, TokenizerJson json)
    {
        if (token is null) return null;
        return json.Ids.TryGetValue(token, out var id)
            ? id
            : throw KilnException.InFile(configPath, field, $"'{token}' is not in {TokenizerJson.FileName}");
    }

    private static int? SingleOrNull(int[] ids) => ids.Length == 1 ? ids[0] : null;

    // transformers' Llama tokenizers rebuild the post-processor from add_bos_token/add_eos_token, so when the
    // config says, it decides whether the token is there; the template then cannot add it a second time.
    private static int[] Override(string configPath, string field, int[] template, bool? add, int? id, bool atStart)
    {
        if (add is null) return template;
        if (add == true && id is null) throw KilnException.InFile(configPath, field, "is true, but the token is not set");
        var rest = template.Where(t => t != id).ToArray();
        if (add == false) return rest;
        return atStart ? [id!.Value, .. rest] : [.. rest, id!.Value];
    }
}
