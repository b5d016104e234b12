using Kiln.Checkpoints;
using Kiln.Graph;
using Xunit;

namespace Kiln.Tests.Checkpoints;

public sealed class SafetensorsWriterTests
{
    [Fact]
    public void StreamedPiecesMayCrossTensorBoundaries()
    {
        using var dir = new TempDir();
        var path = dir.File("s.safetensors");
        using (var writer = SafetensorsWriter.Create(path, [new("a", DType.F32, [2]), new("b", DType.F32, [1])]))
        {
            var bytes = CraftedFiles.Floats(1, 2, 3);
            writer.Write(bytes.AsSpan(0, 5));
            writer.Write(bytes.AsSpan(5));
            writer.Complete();
        }

        using var file = SafetensorsFile.Open(path);
        Assert.Equal([1f, 2], CraftedFiles.ToFloats(file.GetBytes(file.Tensors["a"])));
        Assert.Equal([3f], CraftedFiles.ToFloats(file.GetBytes(file.Tensors["b"])));
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void TensorsMustBeWrittenWholeAndInOrder()
    {
        using var dir = new TempDir();
        using var writer = SafetensorsWriter.Create(dir.File("s.safetensors"), [new("a", DType.F32, [2]), new("b", DType.F32, [1])]);

        Assert.Throws<InvalidOperationException>(() => writer.WriteTensor("b", CraftedFiles.Floats(3)));
        Assert.Throws<InvalidOperationException>(() => writer.WriteTensor("a", CraftedFiles.Floats(1)));
        Assert.Throws<InvalidOperationException>(() => writer.WriteTensor("z", CraftedFiles.Floats(1)));
        writer.WriteTensor("a", CraftedFiles.Floats(1, 2));
        Assert.Throws<InvalidOperationException>(() => writer.Complete());
        Assert.Throws<InvalidOperationException>(() => writer.Write(new byte[8]));
    }

    [Fact]
    public void AnUncompletedFileIsDeleted()
    {
        using var dir = new TempDir();
        var path = dir.File("s.safetensors");
        using (var writer = SafetensorsWriter.Create(path, [new("a", DType.F32, [2])]))
        {
            writer.Write(new byte[4]);
        }
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void DuplicateNamesAreRejected()
    {
        using var dir = new TempDir();
        Assert.Throws<ArgumentException>(() =>
            SafetensorsWriter.Create(dir.File("s.safetensors"), [new("a", DType.F32, [2]), new("a", DType.F16, [2])]));
        Assert.False(File.Exists(dir.File("s.safetensors")));
    }
}
