using System.Buffers.Binary;
using System.Text;
using CsCheck;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Tests.Checkpoints;

namespace Kiln.Tests.Fuzzing;

/// <summary>
/// Mutated safetensors files (byte flips, truncation, a wrong header length, edits of the header JSON,
/// trailing bytes): opening either yields tensors that tile the data section exactly, or a one-line
/// KilnException naming the file; no other exception.
/// </summary>
public sealed class SafetensorsHeaderFuzzTests : IDisposable
{
    private static readonly int Cases = FuzzOutcome.Scaled(3000);

    private readonly TempDir dir = new();
    private readonly byte[] valid;

    public SafetensorsHeaderFuzzTests()
    {
        var path = CraftedFiles.Safetensors(dir.File("valid.safetensors"),
            (new SafetensorsEntry("a", DType.F32, [2, 3]), CraftedFiles.Floats(1, 2, 3, 4, 5, 6)),
            (new SafetensorsEntry("b", DType.U8, [5]), [1, 2, 3, 4, 5]),
            (new SafetensorsEntry("c", DType.BF16, [4]), new byte[8]),
            (new SafetensorsEntry("empty", DType.F32, [0, 4]), []));
        valid = File.ReadAllBytes(path);
    }

    public void Dispose() => dir.Dispose();

    [Fact]
    public void MutatedFilesOpenExactlyOrFailWithOneLineNamingTheFile()
    {
        var opened = 0;
        Gen.Int.Sample(seed =>
        {
            var bytes = Mutate(valid, new Random(seed));
            var path = dir.File($"case-{Guid.NewGuid():N}.safetensors");
            File.WriteAllBytes(path, bytes);
            try
            {
                if (FuzzOutcome.AcceptedOrRefused(() => CheckExactCover(path, bytes), Path.GetFileName(path), $"seed {seed}"))
                    Interlocked.Increment(ref opened);
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
    public void KilnProcessesOverMutatedWeightsExitCleanly()
    {
        var weights = File.ReadAllBytes(Path.Combine(TestPaths.DefaultModel, "model.safetensors"));
        Gen.Int.Sample(seed =>
        {
            var model = dir.File($"model-{Guid.NewGuid():N}");
            CraftedFiles.CopyFolder(TestPaths.DefaultModel, model);
            File.WriteAllBytes(Path.Combine(model, "model.safetensors"), Mutate(weights, new Random(seed)));
            FuzzOutcome.GenerateExitsCleanly(model, $"seed {seed}");
        }, iter: ProcessCases, threads: 1);
    }

    private static readonly int ProcessCases = FuzzOutcome.Scaled(3);

    // Independently of the reader: sorted by offset, tensors start at the data section and end at the end of the file.
    private static void CheckExactCover(string path, byte[] bytes)
    {
        using var file = SafetensorsFile.Open(path);
        var dataStart = 8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(dataStart, file.Header.DataStart);
        var cursor = dataStart;
        foreach (var t in file.Tensors.Values.OrderBy(t => t.DataOffset).ThenBy(t => t.ByteLength))
        {
            Assert.Equal(cursor, t.DataOffset);
            Assert.Equal(t.Shape.Aggregate(1L, (x, y) => x * y) * t.DType.ByteSize(), t.ByteLength);
            cursor += t.ByteLength;
        }
        Assert.Equal(bytes.Length, cursor);
    }

    private static byte[] Mutate(byte[] valid, Random random)
    {
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        var header = Encoding.UTF8.GetString(valid, 8, headerLength);
        var data = valid[(8 + headerLength)..];
        switch (random.Next(7))
        {
            case 0: // flip bytes anywhere
                var flipped = (byte[])valid.Clone();
                for (var n = random.Next(1, 4); n > 0; n--) flipped[random.Next(flipped.Length)] = (byte)random.Next(256);
                return flipped;
            case 1: // truncate
                return valid[..random.Next(valid.Length)];
            case 2: // header length off by a few bytes, the rest unchanged
                var shifted = (byte[])valid.Clone();
                BinaryPrimitives.WriteUInt64LittleEndian(shifted, (ulong)Math.Max(0, headerLength + random.Next(-8, 9)));
                return shifted;
            case 3: // trailing bytes after the last tensor
                return [.. valid, .. new byte[random.Next(1, 9)]];
            case 4: // a header that is one byte shorter than its length says, padding kept (the fuzzing finding)
                return Build(header.TrimEnd() + new string(' ', random.Next(1, 4)), data, lengthDelta: -random.Next(1, 3));
            case 5: // edit the JSON text
                return Build(EditJson(header, random), data);
            default: // invalid UTF-8 inside a string
                var json = Encoding.UTF8.GetBytes(header.TrimEnd());
                var at = header.IndexOf("\"dtype\"", StringComparison.Ordinal) + 2;
                byte[] bad = [.. json[..at], (byte)(0x80 + random.Next(0x7f)), .. json[at..]];
                return Build(bad, data);
        }
    }

    private static readonly string[] Replacements =
    [
        "\"F32\"", "\"F16\"", "\"I64\"", "\"BOOL\"", "\"F8_E4M3\"", "\"XX\"", "1", "null", "[]", "{}", "true",
        "0", "-1", "1.5", "1e400", "18446744073709551616", "9223372036854775807", "4294967296", "[0, 0]", "[4294967296, 4294967296]",
        "[9223372036854775807, 2]", "[1, 2, 3]", "\"\\ud800\"", "\"a\"",
    ];

    // Replace a token of the header (a value, a number, a key) or duplicate an entry.
    private static string EditJson(string header, Random random)
    {
        var text = header.TrimEnd();
        switch (random.Next(4))
        {
            case 0: // duplicate the first entry (a tensor or __metadata__: both are flat objects)
                var start = text.IndexOf('"');
                var end = text.IndexOf('}', start) + 1;
                return text.Insert(1, text[start..end] + ",");
            case 1: // replace a number
                var digits = Enumerable.Range(0, text.Length).Where(i => char.IsDigit(text[i]) && !char.IsDigit(text[i - 1])).ToArray();
                var d = digits[random.Next(digits.Length)];
                var len = text[d..].TakeWhile(char.IsDigit).Count();
                return text[..d] + Replacements[random.Next(Replacements.Length)] + text[(d + len)..];
            case 2: // replace a string
                var quotes = Enumerable.Range(0, text.Length).Where(i => text[i] == '"').ToArray();
                var q = quotes[random.Next(quotes.Length / 2) * 2];
                var close = text.IndexOf('"', q + 1);
                return text[..q] + Replacements[random.Next(Replacements.Length)] + text[(close + 1)..];
            default: // cut the JSON somewhere
                return text[..random.Next(text.Length)];
        }
    }

    private static byte[] Build(string header, byte[] data, int lengthDelta = 0) => Build(Encoding.UTF8.GetBytes(header), data, lengthDelta);

    private static byte[] Build(byte[] header, byte[] data, int lengthDelta = 0)
    {
        var prefix = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)(header.Length + lengthDelta));
        return [.. prefix, .. header, .. data];
    }
}
