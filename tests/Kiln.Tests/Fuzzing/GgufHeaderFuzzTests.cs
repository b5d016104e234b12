using System.Buffers.Binary;
using System.Text;
using CsCheck;
using Kiln.Checkpoints;
using Kiln.Checkpoints.Gguf;
using Kiln.Runtime;
using Kiln.Tests.Checkpoints.Gguf;

namespace Kiln.Tests.Fuzzing;

/// <summary>
/// Mutated GGUF files (byte flips in the header or anywhere, truncation, huge counts and lengths written over
/// header fields, bad tensor offsets, trailing bytes): opening one as a checkpoint and building its tokenizer
/// either works, with every tensor inside the file at an aligned offset, or throws a one-line KilnException
/// naming the file; no other exception, no hang, no allocation beyond the file. A few mutated copies of the
/// default model's GGUF also go through the real `kiln generate`: exit 0, or exit 2 with one error line.
/// </summary>
public sealed class GgufHeaderFuzzTests : IDisposable
{
    private static readonly int Cases = FuzzOutcome.Scaled(3000);
    private static readonly ulong[] Huge = [0, 1, 2, 255, 1UL << 31, 1UL << 32, 1UL << 40, 1UL << 62, long.MaxValue, ulong.MaxValue];

    private readonly TempDir dir = new();
    private readonly byte[] valid;
    private readonly int[] offsetFields;
    private readonly int headerLength;

    public GgufHeaderFuzzTests()
    {
        // A one-layer llama of the default model's vocabulary, one tensor of each type Kiln reads.
        var (metadata, tensors) = GgufModels.Read(GgufModels.Stories260K);
        GgufValue U32(uint v) => new(GgufValueType.UInt32, v);
        var sizes = new Dictionary<string, GgufValue>
        {
            ["llama.block_count"] = U32(1), ["llama.embedding_length"] = U32(32), ["llama.feed_forward_length"] = U32(64),
            ["llama.attention.head_count"] = U32(4), ["llama.attention.head_count_kv"] = U32(2), ["llama.rope.dimension_count"] = U32(8),
        };
        metadata = [.. metadata.Select(e => sizes.TryGetValue(e.Key, out var v) ? new KeyValuePair<string, GgufValue>(e.Key, v) : e)];
        var random = new Random(7);
        GgufTensorData Tensor(string name, GgmlType type, params long[] dims)
        {
            var count = dims.Aggregate(1L, (a, b) => a * b);
            var bytes = new byte[type switch { GgmlType.F32 => count * 4, GgmlType.F16 or GgmlType.BF16 => count * 2, GgmlType.Q8_0 => count / 32 * 34, _ => count / 32 * 18 }];
            random.NextBytes(bytes);
            return new GgufTensorData(name, dims, type, bytes);
        }
        GgufTensorData[] model =
        [
            Tensor("token_embd.weight", GgmlType.F16, 32, 512), Tensor("output_norm.weight", GgmlType.F32, 32), Tensor("output.weight", GgmlType.Q8_0, 32, 512),
            Tensor("blk.0.attn_norm.weight", GgmlType.F32, 32), Tensor("blk.0.attn_q.weight", GgmlType.Q8_0, 32, 32),
            Tensor("blk.0.attn_k.weight", GgmlType.Q4_0, 32, 16), Tensor("blk.0.attn_v.weight", GgmlType.BF16, 32, 16),
            Tensor("blk.0.attn_output.weight", GgmlType.Q4_0, 32, 32), Tensor("blk.0.ffn_norm.weight", GgmlType.F32, 32),
            Tensor("blk.0.ffn_gate.weight", GgmlType.Q8_0, 32, 64), Tensor("blk.0.ffn_up.weight", GgmlType.F32, 32, 64),
            Tensor("blk.0.ffn_down.weight", GgmlType.F16, 64, 32),
        ];
        valid = GgufWriter.Bytes(metadata, model);
        // Where each tensor info's offset field is: after its name, dims and type.
        var at = valid.AsSpan().IndexOf([.. BitConverter.GetBytes((ulong)"token_embd.weight".Length), .. "token_embd.weight"u8]);
        var fields = new List<int>();
        foreach (var t in model)
        {
            at += 8 + t.Name.Length + 4 + 8 * t.Dims.Length + 4;
            fields.Add(at);
            at += 8;
        }
        (offsetFields, headerLength) = ([.. fields], at);
    }

    public void Dispose() => dir.Dispose();

    [Fact]
    public void The_unmutated_file_opens_with_every_type()
    {
        var path = dir.File("valid.gguf");
        File.WriteAllBytes(path, valid);
        using var checkpoint = Checkpoint.Open(path);
        Assert.Equal(["bf16", "f16", "f32", "q4_0", "q8_0"], checkpoint.Tensors.Values.Select(t => t.StoredFormat).Distinct().Order());
        CheckInside(path);
    }

    [Fact]
    public void Mutated_files_open_inside_their_bounds_or_fail_with_one_line_naming_the_file()
    {
        var opened = 0;
        Gen.Int.Sample(seed =>
        {
            var path = dir.File($"case-{Guid.NewGuid():N}.gguf");
            File.WriteAllBytes(path, Mutate(new Random(seed)));
            try
            {
                if (FuzzOutcome.AcceptedOrRefused(() => CheckInside(path), Path.GetFileName(path), $"seed {seed}")) Interlocked.Increment(ref opened);
            }
            finally
            {
                File.Delete(path);
            }
        }, iter: Cases);
        // The mutations must not all be refused at the first byte: some still open (and are then checked).
        Assert.True(opened > 0, "no mutated file opened");
    }

    [Fact]
    public void Kiln_processes_over_mutated_ggufs_exit_cleanly()
    {
        var original = File.ReadAllBytes(GgufModels.Stories260K);
        using var header = GgufFile.Open(GgufModels.Stories260K);
        var dataStart = (int)header.Header.DataStart;
        Gen.Int.Sample(seed =>
        {
            var random = new Random(seed);
            var bytes = (byte[])original.Clone();
            for (var n = random.Next(1, 4); n > 0; n--) bytes[random.Next(dataStart)] = (byte)random.Next(256);
            var path = dir.File($"model-{Guid.NewGuid():N}.gguf");
            File.WriteAllBytes(path, random.Next(4) == 0 ? bytes[..random.Next(bytes.Length)] : bytes);
            FuzzOutcome.GenerateExitsCleanly(path, $"seed {seed}", "--prompt", "Once upon a time");
        }, iter: FuzzOutcome.Scaled(4), threads: 1);
    }

    // Opens the file as a checkpoint and builds its tokenizer; on success, every tensor lies in the file, aligned.
    private static void CheckInside(string path)
    {
        using var checkpoint = Checkpoint.Open(path);
        var gguf = checkpoint.Gguf!;
        var length = new FileInfo(path).Length;
        foreach (var tensor in checkpoint.Tensors.Values)
        {
            Assert.InRange(tensor.DataOffset, gguf.Header.DataStart, length - tensor.ByteLength);
            Assert.Equal(0, (tensor.DataOffset - gguf.Header.DataStart) % gguf.Header.Alignment);
        }
        using var tokenizer = Tokenizer.TryLoad(path);
        if (tokenizer is null) return;
        tokenizer.Decode(tokenizer.Encode("Once upon a time <s> héllo 🙂"), skipSpecialTokens: false);
    }

    private byte[] Mutate(Random random)
    {
        var bytes = (byte[])valid.Clone();
        switch (random.Next(6))
        {
            case 0: // flip bytes of the header
                for (var n = random.Next(1, 4); n > 0; n--) bytes[random.Next(headerLength)] = (byte)random.Next(256);
                return bytes;
            case 1: // flip bytes anywhere
                for (var n = random.Next(1, 4); n > 0; n--) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                return bytes;
            case 2: // truncate
                return bytes[..random.Next(bytes.Length)];
            case 3: // a count or length written over the header at any byte
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(random.Next(headerLength - 8)), Huge[random.Next(Huge.Length)]);
                return bytes;
            case 4: // a tensor's offset moved: misaligned, overlapping, past the end
                var field = offsetFields[random.Next(offsetFields.Length)];
                var offset = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(field));
                ulong[] moved = [offset + 1, offset + 32, offset - 32, 0, (ulong)bytes.Length, Huge[random.Next(Huge.Length)]];
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(field), moved[random.Next(moved.Length)]);
                return bytes;
            default: // trailing bytes
                return [.. bytes, .. new byte[random.Next(1, 100)]];
        }
    }
}
