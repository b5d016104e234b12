using System.Runtime.InteropServices;
using Kiln.Checkpoints;
using Kiln.Graph;

namespace Kiln.Weights;

/// <summary>
/// Applies a <see cref="LoadRecipe"/> to a checkpoint's memory-mapped tensors. Nothing is copied
/// that need not be: a recipe without steps, a slice of whole leading rows, a cast to the same dtype
/// and a concat of one tensor all stay views of the file; other steps write 64-byte-aligned buffers,
/// and intermediates are freed as soon as the next step no longer needs them.
/// </summary>
public static unsafe class RecipeExecutor
{
    /// <summary>Elements converted per span in casts, so tensors over 2^31 elements work.</summary>
    private const int CastChunk = 1 << 24;

    /// <summary>One tensor of the working list: its bytes and the buffer that owns them (null for the file).</summary>
    private readonly record struct Work(DType DType, long[] Shape, nint Pointer, NativeBuffer? Owner)
    {
        public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

        public long ByteLength => ElementCount * DType.ByteSize();
    }

    /// <summary>
    /// Produces parameter <paramref name="parameter"/> of <paramref name="dtype"/> and <paramref name="shape"/>.
    /// The recipe is checked against the headers before any byte is read. With a <paramref name="destination"/>
    /// (memory of the parameter's byte length, e.g. its place in a weights file being saved), the result is
    /// made there, by the last step itself where it writes a new tensor, and the parameter points into it.
    /// <paramref name="weightsQuantized"/>, when given, hears of the progress of quantize steps (weights done,
    /// from worker threads).
    /// </summary>
    public static ParameterData Execute(Checkpoint checkpoint, string parameter, LoadRecipe recipe, DType dtype, IReadOnlyList<long> shape,
        nint destination = 0, Action<long>? weightsQuantized = null)
    {
        var sources = recipe.Sources
            .Select(name => checkpoint.Tensors.TryGetValue(name, out var tensor)
                ? tensor
                : throw KilnException.InFile(checkpoint.Directory, name, $"tensor not found in the checkpoint (a source of parameter {parameter})"))
            .ToList();
        (DType DType, long[] Shape) result;
        try
        {
            result = RecipeShapes.Infer(sources, recipe);
        }
        catch (KilnException e)
        {
            throw new KilnException($"parameter {parameter}: {e.Message}", e);
        }
        if (result.DType != dtype || !result.Shape.SequenceEqual(shape))
        {
            throw new KilnException($"parameter {parameter}: expected {dtype.Name()} {RecipeShapes.Format(shape)}, " +
                $"but recipe {recipe} gives {result.DType.Name()} {RecipeShapes.Format(result.Shape)}");
        }

        var list = sources.Select(s => new Work(s.DType, s.Shape, checkpoint.FileOf(s).GetPointer(s), null)).ToList();
        var live = new List<NativeBuffer>();
        try
        {
            for (var i = 0; i < recipe.Steps.Count; i++)
            {
                var shapes = RecipeShapes.Apply(list.Select(w => (w.DType, w.Shape)).ToList(), recipe, i);
                var last = i == recipe.Steps.Count - 1 && shapes.Count == 1;
                try
                {
                    list = Run(recipe.Steps[i], list, shapes, new Allocator(live, last ? destination : 0), weightsQuantized);
                }
                catch (KilnException e)
                {
                    throw KilnException.InFile(checkpoint.Directory, parameter, $"{recipe.Steps[i]}: {e.Message}", e);
                }
                // Free what the new working list no longer points into.
                foreach (var buffer in live.Where(b => list.All(w => w.Owner != b)).ToList())
                {
                    buffer.Dispose();
                    live.Remove(buffer);
                }
            }
            var final = list[0];
            if (destination != 0 && final.Pointer != destination)
            {
                // The recipe ended in a view (or has no steps): its bytes still belong at the destination.
                final = Copy(final, new Allocator(live, destination));
            }
            else if (final.Pointer % final.DType.ByteSize() != 0)
            {
                // A misaligned view (possible in a hand-made file) would fault or be slow in the runtime.
                final = Copy(final, new Allocator(live, 0));
            }
            if (final.Owner is not null || destination != 0)
            {
                // The product is made: its sources need not stay resident beside it (they stay in the page cache).
                foreach (var source in sources) checkpoint.FileOf(source).ReleasePages(source);
            }
            return new ParameterData(parameter, final.DType, final.Shape, final.Pointer, final.ByteLength, final.Owner);
        }
        catch
        {
            foreach (var buffer in live) buffer.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Parameter <paramref name="parameter"/>, a MatMulNBits tensor, re-laid from int4_sym blocks already made
    /// (a weight's data and scales share them, so they are quantized once), at <paramref name="destination"/> when given.
    /// </summary>
    public static ParameterData Relay(string parameter, ParameterData blocks, NBitsLayoutStep layout, DType dtype, IReadOnlyList<long> shape, nint destination)
    {
        var result = RecipeShapes.Apply([(blocks.DType, blocks.Shape)], new LoadRecipe([], [layout]), 0)[0];
        if (result.DType != dtype || !result.Shape.SequenceEqual(shape))
            throw new KilnException($"parameter {parameter}: {layout}: expected {dtype.Name()} {RecipeShapes.Format(shape)}, but the blocks give {result.DType.Name()} {RecipeShapes.Format(result.Shape)}");
        var live = new List<NativeBuffer>();
        var made = ToNBits(new Work(blocks.DType, blocks.Shape, blocks.Pointer, null), layout.Part, result, new Allocator(live, destination));
        return new ParameterData(parameter, made.DType, made.Shape, made.Pointer, made.ByteLength, made.Owner);
    }

    /// <summary>Whether <see cref="CastStep"/> supports this conversion (the float types among themselves).</summary>
    public static bool CanCast(DType from, DType to) =>
        from == to || (from is DType.F32 or DType.F16 or DType.BF16 && to is (DType.F32 or DType.F16 or DType.BF16));

    private static List<Work> Run(RecipeStep step, List<Work> list, IReadOnlyList<(DType DType, long[] Shape)> shapes, Allocator allocator,
        Action<long>? weightsQuantized) => step switch
    {
        TransposeStep => list.Select((w, i) => Transpose(w, shapes[i].Shape, allocator)).ToList(),
        SliceStep slice => list.Select((w, i) => Slice(w, slice, shapes[i].Shape, allocator)).ToList(),
        SliceEachStep each => list.Select((w, i) => Slice(w, new SliceStep(each.Dim, each.Starts[i], each.Lengths[i]), shapes[i].Shape, allocator)).ToList(),
        ConcatStep concat => [Concat(list, concat.Dim, shapes[0].Shape, allocator)],
        CastStep cast => list.Select(w => Cast(w, cast.To, allocator)).ToList(),
        QuantizeStep quantize => list.Select((w, i) => Quantize(w, quantize.Scheme, shapes[i].Shape, allocator, weightsQuantized)).ToList(),
        DeinterleaveRowsStep deinterleave => list.Select((w, i) => deinterleave.AppliesTo(i) ? Deinterleave(w, deinterleave.Group, allocator) : w).ToList(),
        OffsetStep offset => list.Select(w => Offset(w, (float)offset.Value, allocator)).ToList(),
        DequantizeStep dequantize => list.Select((w, i) => Dequantize(w, dequantize.Scheme, shapes[i].Shape, allocator)).ToList(),
        NBitsLayoutStep layout => list.Select((w, i) => ToNBits(w, layout.Part, shapes[i], allocator)).ToList(),
        SplitColumnsStep => list.Select((w, i) => SplitColumns(w, shapes[i].Shape, allocator)).ToList(),
        _ => throw new ArgumentException($"unknown step {step}", nameof(step)),
    };

    /// <summary>Where a step's new tensor goes: the caller's destination (the last step's one result), else a new buffer kept in <c>Live</c>.</summary>
    private readonly record struct Allocator(List<NativeBuffer> Live, nint Destination)
    {
        public Work Allocate(DType dtype, long[] shape)
        {
            if (Destination != 0) return new Work(dtype, shape, Destination, null);
            var buffer = new NativeBuffer(shape.Aggregate(1L, (a, b) => a * b) * dtype.ByteSize());
            Live.Add(buffer);
            return new Work(dtype, shape, buffer.Pointer, buffer);
        }
    }

    private static Work Copy(Work source, Allocator allocator)
    {
        var target = allocator.Allocate(source.DType, source.Shape);
        ParallelCopy.Run([new ParallelCopy.Range(source.Pointer, target.Pointer, source.ByteLength)]);
        return target;
    }

    private static Work Transpose(Work source, long[] shape, Allocator allocator)
    {
        var target = allocator.Allocate(source.DType, shape);
        long rows = source.Shape[0], cols = source.Shape[1];
        switch (source.DType.ByteSize())
        {
            case 1: Transpose((byte*)source.Pointer, (byte*)target.Pointer, rows, cols); break;
            case 2: Transpose((ushort*)source.Pointer, (ushort*)target.Pointer, rows, cols); break;
            case 4: Transpose((uint*)source.Pointer, (uint*)target.Pointer, rows, cols); break;
            default: Transpose((ulong*)source.Pointer, (ulong*)target.Pointer, rows, cols); break;
        }
        return target;
    }

    /// <summary>Blocked so that both the reads and the writes of a tile stay in cache.</summary>
    private static void Transpose<T>(T* source, T* target, long rows, long cols) where T : unmanaged
    {
        const int tile = 32;
        for (long r0 = 0; r0 < rows; r0 += tile)
        {
            var r1 = Math.Min(r0 + tile, rows);
            for (long c0 = 0; c0 < cols; c0 += tile)
            {
                var c1 = Math.Min(c0 + tile, cols);
                for (var r = r0; r < r1; r++)
                {
                    for (var c = c0; c < c1; c++) target[c * rows + r] = source[r * cols + c];
                }
            }
        }
    }

    private static Work Slice(Work source, SliceStep slice, long[] shape, Allocator allocator)
    {
        var outer = source.Shape.Take(slice.Dim).Aggregate(1L, (a, b) => a * b);
        var inner = source.Shape.Skip(slice.Dim + 1).Aggregate(1L, (a, b) => a * b) * source.DType.ByteSize();
        if (outer == 1)
        {
            // Whole leading rows are contiguous: point into the source instead of copying.
            return source with { Shape = shape, Pointer = source.Pointer + (nint)(slice.Start * inner) };
        }
        var target = allocator.Allocate(source.DType, shape);
        var chunk = slice.Length * inner;
        var stride = source.Shape[slice.Dim] * inner;
        var from = (byte*)source.Pointer + slice.Start * inner;
        var to = (byte*)target.Pointer;
        for (long o = 0; o < outer; o++, from += stride, to += chunk)
        {
            Buffer.MemoryCopy(from, to, chunk, chunk);
        }
        return target;
    }

    private static Work Concat(List<Work> parts, int dim, long[] shape, Allocator allocator)
    {
        if (parts.Count == 1) return parts[0];
        var target = allocator.Allocate(parts[0].DType, shape);
        var outer = shape.Take(dim).Aggregate(1L, (a, b) => a * b);
        var inner = shape.Skip(dim + 1).Aggregate(1L, (a, b) => a * b) * target.DType.ByteSize();
        var copies = new List<ParallelCopy.Range>();
        var to = target.Pointer;
        for (long o = 0; o < outer; o++)
        {
            foreach (var part in parts)
            {
                var chunk = part.Shape[dim] * inner;
                copies.Add(new ParallelCopy.Range(part.Pointer + (nint)(o * chunk), to, chunk));
                to += (nint)chunk;
            }
        }
        ParallelCopy.Run(copies);
        return target;
    }

    private static Work Quantize(Work source, QuantScheme scheme, long[] shape, Allocator allocator, Action<long>? weightsQuantized)
    {
        var target = allocator.Allocate(DType.U8, shape);
        BlockQuantizer.Quantize(source.DType, (void*)source.Pointer, source.Shape[0], source.Shape[1], scheme, (byte*)target.Pointer, weightsQuantized);
        return target;
    }

    // Block p of the result is columns [p·width, (p + 1)·width) of every row, rows in order.
    private static Work SplitColumns(Work source, long[] shape, Allocator allocator)
    {
        var target = allocator.Allocate(source.DType, shape);
        var (parts, rows) = (shape[0], shape[1]);
        var blockBytes = shape[2] * source.DType.ByteSize();
        var rowBytes = parts * blockBytes;
        var copies = new List<ParallelCopy.Range>();
        var to = target.Pointer;
        for (long p = 0; p < parts; p++)
        {
            for (long row = 0; row < rows; row++, to += (nint)blockBytes)
                copies.Add(new ParallelCopy.Range(source.Pointer + (nint)(row * rowBytes + p * blockBytes), to, blockBytes));
        }
        ParallelCopy.Run(copies);
        return target;
    }

    // Within each group of rows, the even rows, then the odd ones.
    private static Work Deinterleave(Work source, long group, Allocator allocator)
    {
        var target = allocator.Allocate(source.DType, source.Shape);
        var rowBytes = source.Shape.Skip(1).Aggregate(1L, (a, b) => a * b) * source.DType.ByteSize();
        var half = group / 2;
        for (long row = 0; row < source.Shape[0]; row++)
        {
            var (start, within) = (row / group * group, row % group);
            var to = start + (within % 2 == 0 ? within / 2 : half + within / 2);
            Buffer.MemoryCopy((byte*)source.Pointer + row * rowBytes, (byte*)target.Pointer + to * rowBytes, rowBytes, rowBytes);
        }
        return target;
    }

    private static Work Dequantize(Work source, QuantScheme scheme, long[] shape, Allocator allocator)
    {
        var target = allocator.Allocate(DType.F32, shape);
        var rows = source.Shape[..^1].Aggregate(1L, (a, b) => a * b);
        BlockQuantizer.Dequantize((byte*)source.Pointer, rows, shape[^1], scheme, (float*)target.Pointer);
        return target;
    }

    private static Work ToNBits(Work source, NBitsPart part, (DType DType, long[] Shape) result, Allocator allocator)
    {
        var target = allocator.Allocate(result.DType, result.Shape);
        var blocks = source.Shape[0] * source.Shape[1] / QuantScheme.Int4Sym.BlockBytes();
        if (part == NBitsPart.Data) NBitsLayout.Data((byte*)source.Pointer, blocks, (byte*)target.Pointer);
        else NBitsLayout.Scales((byte*)source.Pointer, blocks, (float*)target.Pointer);
        return target;
    }

    private static Work Cast(Work source, DType to, Allocator allocator)
    {
        if (source.DType == to) return source;
        var target = allocator.Allocate(to, source.Shape);
        var count = source.ElementCount;
        for (long start = 0; start < count; start += CastChunk)
        {
            var n = (int)Math.Min(CastChunk, count - start);
            var from = (byte*)source.Pointer + start * source.DType.ByteSize();
            var into = (byte*)target.Pointer + start * to.ByteSize();
            Convert(source.DType, from, to, into, n);
        }
        return target;
    }

    // value + each element, in float32: a new f32 tensor (the elements upcast first when 16-bit).
    private static Work Offset(Work source, float value, Allocator allocator)
    {
        var target = allocator.Allocate(DType.F32, source.Shape);
        var count = source.ElementCount;
        for (long start = 0; start < count; start += CastChunk)
        {
            var n = (int)Math.Min(CastChunk, count - start);
            var into = (float*)target.Pointer + start;
            if (source.DType == DType.F32) new ReadOnlySpan<float>((float*)source.Pointer + start, n).CopyTo(new Span<float>(into, n));
            else Convert(source.DType, (byte*)source.Pointer + start * source.DType.ByteSize(), DType.F32, (byte*)into, n);
            for (var i = 0; i < n; i++) into[i] += value;
        }
        return target;
    }

    private static void Convert(DType from, byte* source, DType to, byte* target, int n)
    {
        switch (from, to)
        {
            case (DType.BF16, DType.F32): FloatConversion.BFloat16ToSingle(new ReadOnlySpan<ushort>(source, n), new Span<float>(target, n)); break;
            case (DType.F16, DType.F32): FloatConversion.HalfToSingle(new ReadOnlySpan<Half>(source, n), new Span<float>(target, n)); break;
            case (DType.F32, DType.BF16): FloatConversion.SingleToBFloat16(new ReadOnlySpan<float>(source, n), new Span<ushort>(target, n)); break;
            case (DType.F32, DType.F16): FloatConversion.SingleToHalf(new ReadOnlySpan<float>(source, n), new Span<Half>(target, n)); break;
            case (DType.BF16, DType.F16): FloatConversion.BFloat16ToHalf(new ReadOnlySpan<ushort>(source, n), new Span<Half>(target, n)); break;
            case (DType.F16, DType.BF16): FloatConversion.HalfToBFloat16(new ReadOnlySpan<Half>(source, n), new Span<ushort>(target, n)); break;
            default: throw new KilnException($"cast from {from.Name()} to {to.Name()} is not supported (only between f32, f16 and bf16)");
        }
    }
}
