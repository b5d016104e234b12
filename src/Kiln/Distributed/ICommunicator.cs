namespace Kiln.Distributed;

/// <summary>
/// The ranks of one run and how they agree. One process is a world of size 1; multi-rank runs use
/// MPI (<see cref="MpiCommunicator"/>). Every rank must call the collective methods in the same order.
/// </summary>
public interface ICommunicator
{
    int Size { get; }

    int Rank { get; }

    void Barrier();

    /// <summary>True on every rank if <paramref name="value"/> is true on every rank.</summary>
    bool AllAgree(bool value);

    /// <summary>Rank 0's <paramref name="value"/>, on every rank.</summary>
    string Broadcast(string value);

    /// <summary>Rank 0's <paramref name="value"/>, on every rank (e.g. the token rank 0 sampled).</summary>
    int Broadcast(int value);

    /// <summary>Replaces <paramref name="values"/> on every rank by their element-wise sum over the ranks.</summary>
    void AllReduceSum(Span<float> values);

    /// <summary>
    /// Every rank's <paramref name="mine"/> (all the same length), joined in rank order into <paramref name="all"/>
    /// (<see cref="Size"/> times as long), on every rank.
    /// </summary>
    void AllGather(ReadOnlySpan<float> mine, Span<float> all);
}
