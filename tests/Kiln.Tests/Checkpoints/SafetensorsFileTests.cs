using System.Text.Json;
using Kiln.Checkpoints;
using Kiln.Graph;
using Xunit;

namespace Kiln.Tests.Checkpoints;

public sealed class SafetensorsFileTests
{
    [Fact]
    public void ReadsTheLlamaOracleHeaderWithShapesFromItsConfig()
    {
        var folder = TestPaths.Oracle("llama_gqa");
        using var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "config.json")));
        int Get(string name) => config.RootElement.GetProperty(name).GetInt32();
        long hidden = Get("hidden_size"), heads = Get("num_attention_heads"), kv = Get("num_key_value_heads");
        long headDim = Get("head_dim"), inter = Get("intermediate_size"), vocab = Get("vocab_size"), layers = Get("num_hidden_layers");

        using var file = SafetensorsFile.Open(Path.Combine(folder, "model.safetensors"));

        Assert.Equal(3 + 9 * layers, file.Tensors.Count);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal([vocab, hidden], file.Tensors["model.embed_tokens.weight"].Shape);
        Assert.Equal([vocab, hidden], file.Tensors["lm_head.weight"].Shape);
        Assert.Equal([hidden], file.Tensors["model.norm.weight"].Shape);
        for (var i = 0; i < layers; i++)
        {
            var p = $"model.layers.{i}.";
            Assert.Equal([heads * headDim, hidden], file.Tensors[p + "self_attn.q_proj.weight"].Shape);
            Assert.Equal([kv * headDim, hidden], file.Tensors[p + "self_attn.k_proj.weight"].Shape);
            Assert.Equal([kv * headDim, hidden], file.Tensors[p + "self_attn.v_proj.weight"].Shape);
            Assert.Equal([hidden, heads * headDim], file.Tensors[p + "self_attn.o_proj.weight"].Shape);
            Assert.Equal([inter, hidden], file.Tensors[p + "mlp.gate_proj.weight"].Shape);
            Assert.Equal([hidden, inter], file.Tensors[p + "mlp.down_proj.weight"].Shape);
            Assert.Equal([hidden], file.Tensors[p + "input_layernorm.weight"].Shape);
        }
        Assert.All(file.Tensors.Values, t => Assert.Equal(DType.F32, t.DType));
    }

    [Fact]
    public void BytesAreTheFileBytesAtTheAbsoluteOffset()
    {
        var path = Path.Combine(TestPaths.Oracle("llama_gqa"), "model.safetensors");
        using var file = SafetensorsFile.Open(path);
        var tensor = file.Tensors["model.norm.weight"];
        var expected = File.ReadAllBytes(path).AsSpan((int)tensor.DataOffset, (int)tensor.ByteLength).ToArray();

        Assert.Equal(expected, file.GetBytes(tensor).ToArray());
        Assert.Equal(tensor.ByteLength, tensor.ElementCount * 4);
    }

    [Fact]
    public unsafe void PointerAndSpanShareTheMapping()
    {
        using var file = SafetensorsFile.Open(Path.Combine(TestPaths.Oracle("llama_gqa"), "model.safetensors"));
        var tensor = file.Tensors["lm_head.weight"];

        fixed (byte* span = file.GetBytes(tensor))
        {
            Assert.Equal(file.GetPointer(tensor), (nint)span);
        }
    }

    [Fact]
    public void WriterOutputReadsBackWithAlignedData()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.Safetensors(dir.File("w.safetensors"),
            (new SafetensorsEntry("small", DType.U8, [3]), [7, 8, 9]),
            (new SafetensorsEntry("big", DType.F32, [2]), CraftedFiles.Floats(1.5f, -2f)));

        using var file = SafetensorsFile.Open(path);

        Assert.Equal(0, file.Header.DataStart % 8);
        Assert.Equal(file.Header.DataStart, file.Tensors["big"].DataOffset);
        Assert.Equal([1.5f, -2f], CraftedFiles.ToFloats(file.GetBytes(file.Tensors["big"])));
        Assert.Equal([7, 8, 9], file.GetBytes(file.Tensors["small"]).ToArray());
    }

    [Fact]
    public void MissingFileIsAKilnError()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<KilnException>(() => SafetensorsFile.Open(dir.File("absent.safetensors")));
        Assert.Contains("absent.safetensors", e.Message);
    }

    [Fact]
    public void FileShorterThanTheLengthPrefix()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("short.safetensors"), [1, 2, 3]);
        AssertFails(dir.File("short.safetensors"), "header length", "truncated");
    }

    [Fact]
    public void HeaderLongerThanTheFile()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"), "{}", 0, headerLength: 500);
        AssertFails(path, "header", "truncated");
    }

    [Fact]
    public void AbsurdHeaderLength()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"), "{}", 0, headerLength: ulong.MaxValue);
        AssertFails(path, "header length", "limit");
    }

    [Fact]
    public void MalformedJson()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"), "{\"a\": {", 0);
        AssertFails(path, "header", "malformed JSON");
    }

    [Fact]
    public void UnknownDtype()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"),
            """{"w": {"dtype": "F8_E4M3X", "shape": [2], "data_offsets": [0, 2]}}""", 2);
        AssertFails(path, "w.dtype", "F8_E4M3X");
    }

    [Theory]
    [InlineData("[8, 4]")]
    [InlineData("[0, 4, 8]")]
    [InlineData("[0]")]
    [InlineData("[-4, 0]")]
    public void DataOffsetsNotABeginEndPair(string offsets)
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"),
            $$$"""{"w": {"dtype": "F32", "shape": [1], "data_offsets": {{{offsets}}}}}""", 8);
        AssertFails(path, "w.data_offsets", "");
    }

    [Fact]
    public void DataOffsetsPastTheDataSection()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"),
            """{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}""", 12);
        AssertFails(path, "w.data_offsets", "past the end");
    }

    [Fact]
    public void OverlappingTensors()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"),
            """{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}""", 24);
        AssertFails(path, "b", "overlaps tensor a");
    }

    [Fact]
    public void ByteCountDifferentFromShape()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"),
            """{"w": {"dtype": "BF16", "shape": [3, 2], "data_offsets": [0, 8]}}""", 8);
        AssertFails(path, "w.data_offsets", "needs 12");
    }

    [Fact]
    public void ShapeWithANonInteger()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"),
            """{"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}""", 4);
        AssertFails(path, "w.shape", "non-negative integers");
    }

    [Fact]
    public void EmptyTensorsAreAllowed()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"),
            """{"e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}""", 4);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(0, file.GetBytes(file.Tensors["e"]).Length);
        Assert.Equal(4, file.GetBytes(file.Tensors["w"]).Length);
    }

    [Fact]
    public void GapBetweenTensors()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"),
            """{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}""", 12);
        AssertFails(path, "b.data_offsets", "gap of 4 bytes after the end of tensor a");
    }

    [Fact]
    public void DataBeforeTheFirstTensor()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"),
            """{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}""", 8);
        AssertFails(path, "a.data_offsets", "gap of 4 bytes after the start of the data section");
    }

    [Fact]
    public void TrailingBytesAfterTheLastTensor()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"),
            """{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}""", 5);
        AssertFails(path, "data section", "1 bytes after the last tensor");
    }

    [Fact]
    public void EmptyDataSectionOnlyWithEmptyTensors()
    {
        using var dir = new TempDir();
        using (var ok = SafetensorsFile.Open(CraftedFiles.RawSafetensors(dir.File("ok.safetensors"),
            """{"e": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}""", 0)))
        {
            Assert.Single(ok.Tensors);
        }
        using (var none = SafetensorsFile.Open(CraftedFiles.RawSafetensors(dir.File("none.safetensors"), "{}", 0)))
        {
            Assert.Empty(none.Tensors);
        }
        AssertFails(CraftedFiles.RawSafetensors(dir.File("data.safetensors"), "{}", 4), "data section", "4 bytes after");
    }

    [Fact]
    public void HeaderLengthOneShortOfItsPaddedJson()
    {
        // The fuzzing finding: the JSON still parses without its last padding space, and every tensor would be read one byte early.
        using var dir = new TempDir();
        var header = """{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}   """;
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"), header, 8, headerLength: (ulong)header.Length - 1);
        AssertFails(path, "data section", "1 bytes after the last tensor");
    }

    [Fact]
    public void DuplicateTensorName()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"),
            """{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}""", 8);
        AssertFails(path, "header w", "duplicate key");
    }

    [Fact]
    public void InvalidUtf8InTheHeader()
    {
        using var dir = new TempDir();
        var path = dir.File("t.safetensors");
        byte[] json = [.. "{\"a"u8.ToArray(), 0xC0, 0xAF, .. "\": {}}"u8.ToArray()];
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((ulong)json.Length), .. json]);
        AssertFails(path, "header line 1", "invalid UTF-8 at byte 3");
    }

    [Fact]
    public void ShapeWhoseByteCountOverflows()
    {
        using var dir = new TempDir();
        var path = CraftedFiles.RawSafetensors(dir.File("t.safetensors"),
            """{"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}}""", 0);
        AssertFails(path, "w.shape", "too large");
    }

    [Fact]
    public async Task AFifoInPlaceOfTheFile()
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [path])!) mkfifo.WaitForExit();
        // A blocked open would surface as a TimeoutException instead.
        var e = await Assert.ThrowsAsync<KilnException>(() => Task.Run(() => SafetensorsFile.Open(path)).WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Equal($"{path}: not a regular file (a FIFO)", e.Message);
    }

    private static void AssertFails(string path, string field, string problem)
    {
        var e = Assert.Throws<KilnException>(() => SafetensorsFile.Open(path));
        Assert.StartsWith($"{path}: {field}", e.Message);
        Assert.Contains(problem, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
