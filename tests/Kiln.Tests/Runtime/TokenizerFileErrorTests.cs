using System.Text.Json.Nodes;
using Kiln.Runtime;
using Kiln.Tests.Checkpoints;
using Xunit;

namespace Kiln.Tests.Runtime;

/// <summary>Malformed tokenizer files: a one-line error naming the file and the field, also for what only Hugging Face's library refuses.</summary>
public sealed class TokenizerFileErrorTests : IDisposable
{
    private readonly TempDir dir = new();

    public TokenizerFileErrorTests() => CraftedFiles.CopyFolder(TestPaths.DefaultModel, dir.Path);

    public void Dispose() => dir.Dispose();

    [Theory]
    [InlineData("model.vocab.<s>", "\"one\"", "expected a token id")]
    [InlineData("model.vocab.<s>", "-1", "expected a token id")]
    [InlineData("model.vocab.<s>", "16777216", "expected a token id")]
    [InlineData("model.vocab", "5", "missing or not an object/array")]
    [InlineData("model.type", "\"Nope\"", "unknown tokenizer model 'Nope'")]
    [InlineData("model.type", "7", "expected a string")]
    [InlineData("model.merges", "{}", "expected an array")]
    [InlineData("model.merges[0]", "[1, 2]", "expected \"a b\" or [\"a\", \"b\"]")]
    [InlineData("model", "[]", "missing or not an object")]
    [InlineData("added_tokens", "{}", "expected an array")]
    [InlineData("added_tokens[0]", "\"<unk>\"", "expected an object")]
    [InlineData("added_tokens[0].id", "\"0\"", "expected a token id")]
    [InlineData("added_tokens[0].content", "null", "expected a string")]
    [InlineData("added_tokens[0].special", "\"yes\"", "expected true or false")]
    public void TokenizerJsonShapesAreCheckedBeforeTheNativeLibrary(string field, string value, string problem)
    {
        Edit("tokenizer.json", field, value);
        AssertRefused("tokenizer.json", field, problem);
    }

    [Fact]
    public void WhatOnlyTheNativeLibraryRefusesIsStillOneLineNamingTheFile()
    {
        Edit("tokenizer.json", "normalizer", """{"type": "NoSuchNormalizer"}""");
        var e = Assert.Throws<KilnException>(() => Tokenizer.Load(dir.Path));
        Assert.StartsWith($"{dir.File("tokenizer.json")}: Hugging Face tokenizers cannot load it", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("add_bos_token", "\"yes\"", "expected true, false or null")]
    [InlineData("bos_token", "7", "expected a string")]
    [InlineData("bos_token", "\"<nope>\"", "is not in tokenizer.json")]
    [InlineData("eos_token", "{\"content\": 3}", "expected a string")]
    public void TokenizerConfigFieldsAreTypeChecked(string field, string value, string problem)
    {
        Edit("tokenizer_config.json", field, value);
        AssertRefused("tokenizer_config.json", field, problem);
    }

    [Fact]
    public void DuplicateKeyInTokenizerConfig()
    {
        var text = File.ReadAllText(dir.File("tokenizer_config.json"));
        File.WriteAllText(dir.File("tokenizer_config.json"), text.Insert(text.IndexOf('{') + 1, "\"add_bos_token\": false,"));
        AssertRefused("tokenizer_config.json", "add_bos_token", "duplicate key");
    }

    private void AssertRefused(string file, string field, string problem)
    {
        var e = Assert.Throws<KilnException>(() => Tokenizer.Load(dir.Path));
        Assert.StartsWith($"{dir.File(file)}: {field}: ", e.Message);
        Assert.Contains(problem, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    // Sets the node at a dotted path ("model.vocab.<s>", "added_tokens[0].id"); the last step may name a new key.
    private void Edit(string file, string field, string value)
    {
        var root = JsonNode.Parse(File.ReadAllText(dir.File(file)))!;
        var steps = field.Replace("[", ".[").Split('.');
        var parent = root;
        foreach (var step in steps[..^1]) parent = step.StartsWith('[') ? parent[int.Parse(step[1..^1])]! : parent[step]!;
        var last = steps[^1];
        if (last.StartsWith('[')) parent.AsArray()[int.Parse(last[1..^1])] = JsonNode.Parse(value);
        else parent.AsObject()[last] = JsonNode.Parse(value);
        File.WriteAllText(dir.File(file), root.ToJsonString());
    }
}
