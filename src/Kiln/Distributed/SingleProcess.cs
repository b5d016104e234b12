namespace Kiln.Distributed;

/// <summary>A world of one rank: every collective is immediate.</summary>
public sealed class SingleProcess : ICommunicator
{
    public static SingleProcess Instance { get; } = new();

    public int Size => 1;

    public int Rank => 0;

    public void Barrier() { }

    public bool AllAgree(bool value) => value;

    public string Broadcast(string value) => value;

    public int Broadcast(int value) => value;

    public void AllReduceSum(Span<float> values) { }

    public void AllGather(ReadOnlySpan<float> mine, Span<float> all)
    {
        if (all.Length != mine.Length) throw new ArgumentException($"all-gather of {mine.Length} values into {all.Length}");
        mine.CopyTo(all);
    }
}
