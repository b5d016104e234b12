using Kiln.Graph;

namespace Kiln.Ops;

/// <summary>Shape arithmetic over known and symbolic dimensions.</summary>
public static class ShapeMath
{
    /// <summary>Numpy-style broadcasting of two shapes (aligned at the right).</summary>
    public static Shape Broadcast(Shape a, Shape b)
    {
        var rank = Math.Max(a.Rank, b.Rank);
        var dims = new Dim[rank];
        for (var i = 0; i < rank; i++)
        {
            var da = i < rank - a.Rank ? Dim.Of(1) : a[i - (rank - a.Rank)];
            var db = i < rank - b.Rank ? Dim.Of(1) : b[i - (rank - b.Rank)];
            dims[i] = da == db ? da
                : da.IsKnown && da.Size == 1 ? db
                : db.IsKnown && db.Size == 1 ? da
                : throw new GraphException($"shapes {a} and {b} do not broadcast");
        }
        return new Shape(dims);
    }

    public static Shape Broadcast(IEnumerable<Shape> shapes) => shapes.Aggregate(Broadcast);

    /// <summary>
    /// Output shape of a reshape in ONNX convention: 0 copies the input dimension at the same index,
    /// -1 is whatever is left (solved symbolically, so [batch, seq, 64] reshaped to [0, -1, 8, 8] gives [batch, seq, 8, 8]).
    /// </summary>
    public static Shape Reshape(Shape input, IReadOnlyList<long> target)
    {
        var dims = new Dim?[target.Count];
        var inferred = -1;
        for (var i = 0; i < target.Count; i++)
        {
            switch (target[i])
            {
                case 0 when i < input.Rank: dims[i] = input[i]; break;
                case -1 when inferred < 0: inferred = i; break;
                case > 0: dims[i] = Dim.Of(target[i]); break;
                default: throw new GraphException($"reshape of {input} to [{string.Join(", ", target)}]: bad entry {target[i]}");
            }
        }
        var total = Product.Of(input.Dims);
        var known = Product.Of(dims.Where(d => d is not null).Select(d => d!.Value));
        if (inferred >= 0)
        {
            dims[inferred] = total.DivideBy(known)?.AsDim()
                ?? throw new GraphException($"reshape of {input} to [{string.Join(", ", target)}]: the -1 dimension cannot be solved");
        }
        else if (!total.Equals(known))
        {
            throw new GraphException($"reshape of {input} to [{string.Join(", ", target)}] changes the element count");
        }
        return new Shape(dims.Select(d => d!.Value));
    }

    /// <summary>A product of dimensions: an integer times a sorted list of symbols.</summary>
    private sealed record Product(long Coefficient, string[] Symbols)
    {
        public static Product Of(IEnumerable<Dim> dims)
        {
            var coefficient = 1L;
            var symbols = new List<string>();
            foreach (var d in dims)
            {
                if (d.IsKnown) coefficient *= d.Size; else symbols.Add(d.Symbol!);
            }
            symbols.Sort(StringComparer.Ordinal);
            return new Product(coefficient, [.. symbols]);
        }

        public Product? DivideBy(Product divisor)
        {
            if (divisor.Coefficient == 0 || Coefficient % divisor.Coefficient != 0) return null;
            var remaining = Symbols.ToList();
            foreach (var s in divisor.Symbols)
            {
                if (!remaining.Remove(s)) return null;
            }
            return new Product(Coefficient / divisor.Coefficient, [.. remaining]);
        }

        public Dim? AsDim() => Symbols.Length switch
        {
            0 => Dim.Of(Coefficient),
            1 when Coefficient == 1 => Dim.Sym(Symbols[0]),
            _ => null,
        };

        public bool Equals(Product? other) =>
            other is not null && Coefficient == other.Coefficient && Symbols.AsSpan().SequenceEqual(other.Symbols);

        public override int GetHashCode() => HashCode.Combine(Coefficient, Symbols.Length);
    }
}
