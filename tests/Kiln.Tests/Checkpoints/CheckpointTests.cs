using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using Kiln.Graph;
using Xunit;

namespace Kiln.Tests.Checkpoints;

public sealed class CheckpointTests
{
    private const string Shard1 = "model-00001-of-00002.safetensors";
    private const string Shard2 = "model-00002-of-00002.safetensors";

    [Fact]
    public void OpensASingleFileCheckpoint()
    {
        var folder = TestPaths.Oracle("llama_gqa");
        using var checkpoint = Checkpoint.Open(folder);

        Assert.Equal(folder, checkpoint.Directory);
        Assert.Equal(64, (int)checkpoint.Config["hidden_size"]!);
        Assert.Equal(2, (int)checkpoint.GenerationConfig!["eos_token_id"]!);
        Assert.Null(checkpoint.TokenizerPath);
        var (name, size) = Assert.Single(checkpoint.WeightFiles);
        Assert.Equal("model.safetensors", name);
        Assert.Equal(new FileInfo(Path.Combine(folder, name)).Length, size);
        Assert.Equal(3 + 9 * 2, checkpoint.Tensors.Count);
    }

    [Fact]
    public void MergesShardsListedByTheIndex()
    {
        var folder = TestPaths.Oracle("llama_gqa_sharded");
        var weightMap = CraftedFiles.WeightMap(Path.Combine(folder, Checkpoint.IndexFileName));
        using var checkpoint = Checkpoint.Open(folder);

        Assert.Equal(weightMap.Count, checkpoint.Tensors.Count);
        foreach (var (tensor, shard) in weightMap)
        {
            Assert.Equal(Path.Combine(folder, shard), checkpoint.Tensors[tensor].File);
        }
        Assert.Equal([Shard1, Shard2], checkpoint.WeightFiles.Select(f => f.RelativeName));
        Assert.All(checkpoint.WeightFiles, f => Assert.Equal(new FileInfo(Path.Combine(folder, f.RelativeName)).Length, f.Size));
    }

    [Fact]
    public void SingleFileWinsOverAnIndexAsInTransformers()
    {
        using var dir = new TempDir();
        CraftedFiles.CopyFolder(TestPaths.Oracle("llama_gqa_sharded"), dir.Path);
        File.Copy(Path.Combine(TestPaths.Oracle("llama_gqa"), "model.safetensors"), dir.File("model.safetensors"));
        using var checkpoint = Checkpoint.Open(dir.Path);

        Assert.Equal("model.safetensors", Assert.Single(checkpoint.WeightFiles).RelativeName);
        Assert.All(checkpoint.Tensors.Values, t => Assert.Equal(dir.File("model.safetensors"), t.File));
    }

    [Fact]
    public void BytesByNameComeFromTheRightShard()
    {
        var folder = TestPaths.Oracle("llama_gqa_sharded");
        using var checkpoint = Checkpoint.Open(folder);
        var tensor = checkpoint.Tensors["lm_head.weight"];
        var expected = File.ReadAllBytes(tensor.File).AsSpan((int)tensor.DataOffset, (int)tensor.ByteLength).ToArray();

        Assert.Equal(expected, checkpoint.GetBytes("lm_head.weight").ToArray());
        Assert.Equal(checkpoint.FileOf(tensor).GetPointer(tensor), checkpoint.GetPointer("lm_head.weight"));
        Assert.Equal(Path.Combine(folder, Shard2), checkpoint.FileOf(tensor).Path);
    }

    [Fact]
    public void DefaultModelHasTokenizerFiles()
    {
        using var checkpoint = Checkpoint.Open(TestPaths.DefaultModel);

        Assert.Equal(Path.Combine(TestPaths.DefaultModel, "tokenizer.json"), checkpoint.TokenizerPath);
        Assert.Equal(Path.Combine(TestPaths.DefaultModel, "tokenizer_config.json"), checkpoint.TokenizerConfigPath);
        Assert.True((bool)checkpoint.Config["tie_word_embeddings"]!);
        Assert.False(checkpoint.Tensors.ContainsKey("lm_head.weight"));
    }

    [Fact]
    public void UnknownTensorNameIsAKilnError()
    {
        using var checkpoint = Checkpoint.Open(TestPaths.Oracle("llama_gqa"));
        var e = Assert.Throws<KilnException>(() => checkpoint.GetPointer("no.such.weight"));
        Assert.Contains("no.such.weight", e.Message);
        Assert.Contains(TestPaths.Oracle("llama_gqa"), e.Message);
    }

    [Fact]
    public void MissingFolder()
    {
        using var dir = new TempDir();
        var missing = dir.File("nope");
        var e = Assert.Throws<KilnException>(() => Checkpoint.Open(missing));
        Assert.StartsWith(missing, e.Message);
    }

    [Fact]
    public void MissingConfig()
    {
        using var dir = new TempDir();
        CraftedFiles.CopyFolder(TestPaths.Oracle("llama_gqa"), dir.Path);
        File.Delete(dir.File("config.json"));

        var e = Assert.Throws<KilnException>(() => Checkpoint.Open(dir.Path));
        Assert.StartsWith(dir.File("config.json"), e.Message);
    }

    [Fact]
    public void MalformedConfig()
    {
        using var dir = new TempDir();
        CraftedFiles.CopyFolder(TestPaths.Oracle("llama_gqa"), dir.Path);
        File.WriteAllText(dir.File("config.json"), "{\n  \"hidden_size\": 64,\n  oops\n}");

        var e = Assert.Throws<KilnException>(() => Checkpoint.Open(dir.Path));
        Assert.StartsWith($"{dir.File("config.json")}: line 3: malformed JSON", e.Message);
    }

    [Fact]
    public void ConfigThatIsNotAnObject()
    {
        using var dir = new TempDir();
        CraftedFiles.CopyFolder(TestPaths.Oracle("llama_gqa"), dir.Path);
        File.WriteAllText(dir.File("config.json"), "[1, 2]");

        var e = Assert.Throws<KilnException>(() => Checkpoint.Open(dir.Path));
        Assert.StartsWith(dir.File("config.json"), e.Message);
    }

    [Fact]
    public void NoWeights()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), "{}");

        var e = Assert.Throws<KilnException>(() => Checkpoint.Open(dir.Path));
        Assert.StartsWith(dir.Path, e.Message);
        Assert.Contains("model.safetensors", e.Message);
    }

    [Fact]
    public void IndexNamingATensorTheShardLacks()
    {
        using var dir = new TempDir();
        CraftedFiles.CopyFolder(TestPaths.Oracle("llama_gqa_sharded"), dir.Path);
        var indexPath = dir.File(Checkpoint.IndexFileName);
        var index = JsonNode.Parse(File.ReadAllText(indexPath))!;
        index["weight_map"]!["model.bogus.weight"] = Shard1;
        File.WriteAllText(indexPath, index.ToJsonString());

        var e = Assert.Throws<KilnException>(() => Checkpoint.Open(dir.Path));
        Assert.StartsWith($"{indexPath}: weight_map.model.bogus.weight", e.Message);
        Assert.Contains(Shard1, e.Message);
    }

    [Fact]
    public void IndexNamingAMissingShard()
    {
        using var dir = new TempDir();
        CraftedFiles.CopyFolder(TestPaths.Oracle("llama_gqa_sharded"), dir.Path);
        File.Delete(dir.File(Shard2));

        var e = Assert.Throws<KilnException>(() => Checkpoint.Open(dir.Path));
        Assert.StartsWith(dir.File(Checkpoint.IndexFileName), e.Message);
        Assert.Contains(Shard2, e.Message);
    }

    [Fact]
    public void IndexPointingOutsideTheFolder()
    {
        using var dir = new TempDir();
        CraftedFiles.CopyFolder(TestPaths.Oracle("llama_gqa_sharded"), dir.Path);
        var indexPath = dir.File(Checkpoint.IndexFileName);
        var index = JsonNode.Parse(File.ReadAllText(indexPath))!;
        index["weight_map"]!["lm_head.weight"] = "../elsewhere.safetensors";
        File.WriteAllText(indexPath, index.ToJsonString());

        var e = Assert.Throws<KilnException>(() => Checkpoint.Open(dir.Path));
        Assert.StartsWith($"{indexPath}: weight_map.lm_head.weight", e.Message);
    }

    [Fact]
    public void ShardHoldingATensorTheIndexDoesNotList()
    {
        using var dir = new TempDir();
        CraftedFiles.CopyFolder(TestPaths.Oracle("llama_gqa_sharded"), dir.Path);
        var indexPath = dir.File(Checkpoint.IndexFileName);
        var index = JsonNode.Parse(File.ReadAllText(indexPath))!;
        index["weight_map"]!.AsObject().Remove("lm_head.weight");
        File.WriteAllText(indexPath, index.ToJsonString());

        var e = Assert.Throws<KilnException>(() => Checkpoint.Open(dir.Path));
        Assert.Equal($"{indexPath}: weight_map: does not list tensor lm_head.weight of shard {Shard2}", e.Message);
    }

    [Theory]
    [InlineData("""{"weight_map": {}}""", "weight_map: lists no tensors")]
    [InlineData("""{"weight_map": {"w": "sub/a.safetensors"}}""", "weight_map.w: expected the file name")]
    [InlineData("""{"weight_map": {"w": ".."}}""", "weight_map.w: expected the file name")]
    [InlineData("""{"weight_map": {"w": 3}}""", "weight_map.w: expected the file name")]
    [InlineData("""{"weight_map": {"w": "a.safetensors", "w": "a.safetensors"}}""", "weight_map.w: duplicate key")]
    public void MalformedIndex(string json, string message)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), "{}");
        CraftedFiles.Safetensors(dir.File("a.safetensors"), (new SafetensorsEntry("w", DType.F32, [1]), CraftedFiles.Floats(1)));
        File.WriteAllText(dir.File(Checkpoint.IndexFileName), json);

        var e = Assert.Throws<KilnException>(() => Checkpoint.Open(dir.Path));
        Assert.StartsWith($"{dir.File(Checkpoint.IndexFileName)}: {message}", e.Message);
    }

    [Fact]
    public void TensorStoredInTwoShards()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), "{}");
        var entry = new SafetensorsEntry("w", DType.F32, [1]);
        CraftedFiles.Safetensors(dir.File("a.safetensors"), (entry, CraftedFiles.Floats(1)));
        CraftedFiles.Safetensors(dir.File("b.safetensors"), (entry, CraftedFiles.Floats(2)),
            (new SafetensorsEntry("x", DType.F32, [1]), CraftedFiles.Floats(3)));
        File.WriteAllText(dir.File(Checkpoint.IndexFileName), """{"weight_map": {"w": "a.safetensors", "x": "b.safetensors"}}""");

        var e = Assert.Throws<KilnException>(() => Checkpoint.Open(dir.Path));
        Assert.StartsWith($"{dir.File("b.safetensors")}: w", e.Message);
        Assert.Contains(dir.File("a.safetensors"), e.Message);
    }

    [Fact]
    public void MalformedShardIsNamed()
    {
        using var dir = new TempDir();
        CraftedFiles.CopyFolder(TestPaths.Oracle("llama_gqa_sharded"), dir.Path);
        File.WriteAllBytes(dir.File(Shard1), [1, 2]);

        var e = Assert.Throws<KilnException>(() => Checkpoint.Open(dir.Path));
        Assert.StartsWith(dir.File(Shard1), e.Message);
    }
}
