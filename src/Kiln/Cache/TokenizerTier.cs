using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Kiln.Checkpoints.Gguf;
using Kiln.Runtime;

namespace Kiln.Cache;

/// <summary>
/// The tokenizer tier of a final snapshot entry: what loading a model folder's tokenizer computes (the
/// checked facts and the edited tokenizer.json that Hugging Face's library loads, see <see cref="Tokenizer.Prepare"/>),
/// saved in &lt;entry&gt;/tokenizer-&lt;key&gt;/ so that a later start hands the saved file to the library
/// without parsing and rewriting a large tokenizer.json again. The key is the content hash of
/// tokenizer.json and tokenizer_config.json (<see cref="ContentHashes"/>: an unchanged file is not read).
/// As everywhere in the cache, a problem is a miss: a folder that fails its check is removed and the
/// tokenizer prepared from the model's files, then saved again (staging, fsync, atomic rename).
/// </summary>
public sealed class TokenizerTier(CacheSettings settings, string graphKey)
{
    public const int SchemaVersion = 1;
    public const string FolderPrefix = "tokenizer-";
    public const string FactsFile = "tokenizer-facts.json";
    public const string CoreFile = "tokenizer.json";

    // Facts are a few kB even for a 256k vocabulary's special tokens.
    private const int MaxFactsBytes = 1 << 20;

    private readonly SnapshotStore _store = new(settings);

    /// <summary>What the last <see cref="Load"/> did: "hit", "miss" (saved unless read-only) or "off" (a GGUF model, not cached).</summary>
    public TokenizerReport? Report { get; private set; }

    private bool Writable => settings.Mode == CacheMode.ReadWrite;

    /// <summary>The tokenizer of <paramref name="model"/>, as <see cref="Tokenizer.Load"/> gives it (and with its error when there is none).</summary>
    public Tokenizer Load(string model) => TryLoad(model) ?? Tokenizer.Load(model);

    /// <summary>The tokenizer of <paramref name="model"/>, as <see cref="Tokenizer.TryLoad"/> gives it: null when it has none.</summary>
    public Tokenizer? TryLoad(string model)
    {
        var clock = Stopwatch.StartNew();
        // A GGUF file's tokenizer comes from its own metadata, read with the header: nothing to save.
        var offReason = GgufCheckpoint.Find(model) is not null ? "a GGUF file's tokenizer"
            : FileStatus.OfPath(_store.EntryDirectory(graphKey)) is not { IsDirectory: true } ? "no graph entry to keep it in"
            : null;
        if (offReason is not null)
        {
            Report = new TokenizerReport("off", offReason, null, 0);
            return Tokenizer.TryLoad(model);
        }
        if (!File.Exists(TokenizerJsonPath(model))) return null;
        var sources = new[] { TokenizerJsonPath(model), Path.Combine(model, TokenizerConfig.FileName) }.Where(File.Exists).ToList();
        string key;
        IReadOnlyList<FileIdentity> hashed;
        try
        {
            hashed = [.. sources.Select(FileIdentity.Of)];
            key = KeyOf(model, ContentHashes.Of(settings.Root, sources, Writable));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Report = new TokenizerReport("off", $"tokenizer files not hashed: {e.Message}", null, 0);
            return Tokenizer.Load(model);
        }
        var folder = Path.Combine(_store.EntryDirectory(graphKey), FolderPrefix + key);
        var (restored, reason) = TryRestore(folder, TokenizerJsonPath(model));
        if (restored is not null)
        {
            Report = new TokenizerReport("hit", null, key, clock.Elapsed.TotalMilliseconds);
            return restored;
        }
        if (reason is not null && Writable) SnapshotStore.DeleteQuietly(folder);

        var (source, facts, coreJson) = Tokenizer.Prepare(model);
        // Prepare read the files by path again: the result is saved under the key only if they are still the files that
        // were hashed (any write or rename changes a file's ctime, so its identity), and no tokenizer_config.json came.
        var saved = Writable && Unchanged(model, sources, hashed) && Save(folder, facts, coreJson);
        // Loaded from the saved file when there is one, which is then checked by the library as a hit's would be.
        var tokenizer = saved ? Tokenizer.FromPreparedFile(source, facts, Path.Combine(folder, CoreFile)) : Tokenizer.FromPrepared(source, facts, coreJson);
        Report = new TokenizerReport("miss", reason ?? "not in the entry", key, clock.Elapsed.TotalMilliseconds, saved);
        return tokenizer;
    }

    private static string TokenizerJsonPath(string model) => Path.Combine(model, Runtime.TokenizerJson.FileName);

    private static bool Unchanged(string model, IReadOnlyList<string> sources, IReadOnlyList<FileIdentity> hashed)
    {
        try
        {
            return sources.Select(FileIdentity.Of).SequenceEqual(hashed)
                && sources.Contains(Path.Combine(model, TokenizerConfig.FileName)) == File.Exists(Path.Combine(model, TokenizerConfig.FileName));
        }
        catch (IOException)
        {
            return false; // a file gone
        }
    }

    // The files' content, and which of them exists (a tokenizer_config.json added later is another key).
    private static string KeyOf(string model, IReadOnlyDictionary<string, string> hashes)
    {
        var text = new StringBuilder($"kiln tokenizer tier {SchemaVersion}\n");
        foreach (var name in new[] { Runtime.TokenizerJson.FileName, TokenizerConfig.FileName })
            text.Append(name).Append('=').Append(hashes.GetValueOrDefault(Path.Combine(model, name), "absent")).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    // (tokenizer, null) on a hit; (null, why) when the folder is there but fails its check; (null, null) when absent.
    private (Tokenizer? Tokenizer, string? Reason) TryRestore(string folder, string source)
    {
        if (FileStatus.OfPath(folder) is null) return (null, null);
        try
        {
            if (!settings.TrustSharedRoot && RootTrust.CheckBelowRoot(folder) is { } distrust) throw new CorruptEntryException($"untrusted folder: {distrust}");
            var facts = ReadFacts(folder);
            var core = Path.Combine(folder, CoreFile);
            using (var stream = FileStatus.OpenRegularFile(core, CoreFile))
            {
                if (stream.Length != facts.CoreBytes || ContentHashes.Hash(stream) != facts.CoreXxh3)
                    throw new CorruptEntryException($"{CoreFile} differs from the one saved");
            }
            return (Tokenizer.FromPreparedFile(source, facts.Tokenizer, core), null);
        }
        catch (Exception e) when (e is CorruptEntryException or IOException or UnauthorizedAccessException or JsonException or KilnException)
        {
            return (null, $"{TokenizerReport.UnusablePrefix}: {e.Message}");
        }
    }

    private static TokenizerFolderFacts ReadFacts(string folder)
    {
        var facts = ManifestReader.Read(folder, FactsFile, CacheJsonContext.Default.TokenizerFolderFacts);
        if (facts.SchemaVersion != SchemaVersion) throw new CorruptEntryException($"{FactsFile}: schema version {facts.SchemaVersion}, this Kiln reads {SchemaVersion}");
        var t = facts.Tokenizer;
        if (t.Prefix is null || t.Suffix is null || t.SpecialIds is null || t.VocabSize < 0
            || t.Prefix.Concat(t.Suffix).Concat(t.SpecialIds).Any(id => id < 0 || id >= Models.ConfigLimits.MaxVocab))
            throw new CorruptEntryException($"{FactsFile}: ids out of range");
        return facts;
    }

    // Staged beside the entries, then renamed into the entry: a reader sees the whole folder or none.
    private bool Save(string folder, TokenizerFacts facts, string coreJson)
    {
        var staging = Path.Combine(settings.PipelineDirectory, $".staging-{graphKey[..16]}.tokenizer-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            PrivateFiles.CreateDirectory(staging);
            var core = Encoding.UTF8.GetBytes(coreJson);
            DurableFiles.WriteAllBytes(Path.Combine(staging, CoreFile), core);
            var record = new TokenizerFolderFacts(SchemaVersion, facts, core.LongLength, ContentHashes.Hash(new MemoryStream(core, writable: false)));
            var factsBytes = JsonSerializer.SerializeToUtf8Bytes(record, CacheJsonContext.Default.TokenizerFolderFacts);
            if (factsBytes.Length > MaxFactsBytes) return false;
            DurableFiles.WriteAllBytes(Path.Combine(staging, FactsFile), factsBytes);
            DurableFiles.SyncDirectory(staging);
            // Another process may have saved the same folder meanwhile: then this staging copy goes.
            if (FileStatus.OfPath(folder) is not null || FileStatus.OfPath(Path.GetDirectoryName(folder)!) is not { IsDirectory: true }) return false;
            DurableFiles.Rename(staging, folder);
            DurableFiles.SyncDirectory(Path.GetDirectoryName(folder)!);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        finally
        {
            if (Directory.Exists(staging)) SnapshotStore.DeleteQuietly(staging);
        }
    }
}
