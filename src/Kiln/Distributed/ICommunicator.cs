namespace Kiln.Distributed;

/// <summary>
/// The ranks of one run and how they agree. One process is a world of size 1; multi-rank runs use
/// MPI. Every rank must call the collective methods in the same order.
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
}
