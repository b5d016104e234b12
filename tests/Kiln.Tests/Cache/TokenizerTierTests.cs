using System.Text.Json;
using Kiln.Cache;

namespace Kiln.Tests.Cache;

/// <summary>
/// The tokenizer tier with real `kiln generate` processes on a copy of the default model: the prepared
/// tokenizer is saved in the final entry on a miss and loaded from there on a hit, keyed by the content
/// of tokenizer.json and tokenizer_config.json; a damaged folder is a miss with its reason.
/// </summary>
public sealed class TokenizerTierTests : IDisposable
{
    private readonly CacheDir _cache = new();
    private readonly string _model;

    public TokenizerTierTests()
    {
        _model = _cache.Outside("model");
        Directory.CreateDirectory(_model);
        foreach (var file in Directory.EnumerateFiles(TestPaths.DefaultModel)) File.Copy(file, Path.Combine(_model, Path.GetFileName(file)));
    }

    private CliResult Run(params string[] extra)
    {
        var result = _cache.Run(["generate", "--model", _model, "--prompt", "Once upon a time", "--max-new-tokens", "8", "--json", "--threads", "1", .. extra]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        return result;
    }

    // What a run says of the text: the prompt's ids (the tokenizer's encoding) and the decoded continuation.
    private static (string PromptIds, string? Text) Output(CliResult result)
    {
        using var json = JsonDocument.Parse(result.Stdout);
        return (json.RootElement.GetProperty("prompt_ids").GetRawText(), json.RootElement.GetProperty("text").GetString());
    }

    private string FinalEntry => _cache.Entries().Single(e => SnapshotStore.ReadManifest(e).Point.Index == DefaultPoints.FinalIndex);

    private IReadOnlyList<string> TokenizerFolders() =>
        _cache.Entries().SelectMany(e => Directory.EnumerateDirectories(e, TokenizerTier.FolderPrefix + "*")).ToList();

    [Fact]
    public void AMissSavesTheTokenizerInTheFinalEntryAndAHitGivesTheUncachedText()
    {
        var uncached = Output(Run("--no-cache"));
        Assert.Empty(_cache.Entries());
        var cold = Run();
        var folder = Assert.Single(TokenizerFolders());
        Assert.Equal(FinalEntry, Path.GetDirectoryName(folder));
        Assert.Equal(PrivateFiles.FileMode, File.GetUnixFileMode(Path.Combine(folder, TokenizerTier.CoreFile)));
        var facts = File.ReadAllText(Path.Combine(folder, TokenizerTier.FactsFile));
        Assert.Contains("\"core_xxh3\"", facts);

        var coreWritten = File.GetLastWriteTimeUtc(Path.Combine(folder, TokenizerTier.CoreFile));
        var warm = Run();
        Assert.Equal(uncached, Output(cold));
        Assert.Equal(uncached, Output(warm));
        Assert.Equal(folder, Assert.Single(TokenizerFolders()));
        Assert.Equal(coreWritten, File.GetLastWriteTimeUtc(Path.Combine(folder, TokenizerTier.CoreFile)));
        Assert.DoesNotContain("tokenizer miss", warm.Stderr);
        Assert.Empty(_cache.Leftovers());
    }

    [Fact]
    public void AChangedTokenizerConfigIsAnotherKeyAndTheTextFollowsIt()
    {
        Run();
        var before = Output(Run());
        // The default model's tokenizer adds BOS (id 1): without it the prompt's ids change.
        File.WriteAllText(Path.Combine(_model, "tokenizer_config.json"), """{"add_bos_token": false}""");
        var expected = Output(Run("--no-cache"));
        Assert.NotEqual(before.PromptIds, expected.PromptIds);
        Assert.StartsWith("[1,", before.PromptIds);

        var after = Output(Run());
        Assert.Equal(expected, after);
        Assert.Equal(2, TokenizerFolders().Count);
        Assert.Equal(expected, Output(Run()));
    }

    [Fact]
    public void AFlippedByteInTheSavedTokenizerIsAMissWithItsReasonAndTheTextIsUnchanged()
    {
        var expected = Output(Run("--no-cache"));
        Run();
        var core = Path.Combine(Assert.Single(TokenizerFolders()), TokenizerTier.CoreFile);
        var bytes = File.ReadAllBytes(core);
        bytes[bytes.Length / 2] ^= 0x01;
        File.WriteAllBytes(core, bytes);

        var damaged = Run();
        Assert.Contains("kiln: tokenizer miss (tokenizer folder unusable: tokenizer.json differs from the one saved); prepared it from the model's files", damaged.Stderr);
        Assert.Equal(expected, Output(damaged));
        // Saved again, whole: the next run is a hit.
        var repaired = Run();
        Assert.DoesNotContain("tokenizer miss", repaired.Stderr);
        Assert.Equal(expected, Output(repaired));
    }

    [Fact]
    public void MalformedFactsAreAMissNeverAFailure()
    {
        var expected = Output(Run("--no-cache"));
        Run();
        var facts = Path.Combine(Assert.Single(TokenizerFolders()), TokenizerTier.FactsFile);
        foreach (var text in new[] { "{", "null", """{"schema_version": 1}""", "\u00ff\u00fe", File.ReadAllText(facts).Replace("\"prefix\": [", "\"prefix\": [-5, ", StringComparison.Ordinal) })
        {
            File.WriteAllText(facts, text);
            var run = Run();
            Assert.Contains("kiln: tokenizer miss (tokenizer folder unusable: ", run.Stderr);
            Assert.DoesNotContain("Exception", run.Stderr);
            Assert.Equal(expected, Output(run));
            facts = Path.Combine(Assert.Single(TokenizerFolders()), TokenizerTier.FactsFile);
        }
    }

    [Fact]
    public void ReadOnlyModeWritesNothing()
    {
        var expected = Output(Run("--no-cache"));
        Run();
        foreach (var folder in TokenizerFolders()) Directory.Delete(folder, recursive: true);
        var listing = _cache.Listing();
        var readOnly = Run("--cache-mode", "read-only");
        Assert.Equal(expected, Output(readOnly));
        Assert.Equal(listing, _cache.Listing());
        Assert.Empty(TokenizerFolders());
    }

    public void Dispose() => _cache.Dispose();
}
