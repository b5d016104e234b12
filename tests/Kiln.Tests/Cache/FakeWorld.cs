using Kiln.Distributed;

namespace Kiln.Tests.Cache;

/// <summary>
/// A fake multi-rank world: ranks are threads of one process that meet at a barrier. AllAgree is a
/// logical AND, Broadcast takes rank 0's value, AllReduceSum adds in rank order. A rank that stops calling collectives makes the
/// others fail after a timeout instead of hanging the test run.
/// </summary>
public sealed class FakeWorld(int size)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly Barrier _barrier = new(size);
    private readonly bool[] _votes = new bool[size];
    private readonly string[] _values = new string[size];
    private readonly float[][] _floats = new float[size][];

    public int Size => size;

    /// <summary>Runs <paramref name="body"/> on every rank at once and returns each rank's result, in rank order.</summary>
    public T[] Run<T>(Func<ICommunicator, T> body)
    {
        var tasks = Enumerable.Range(0, size)
            .Select(rank => Task.Factory.StartNew(() => body(new FakeRank(this, rank)), TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(tasks);
        return tasks.Select(t => t.Result).ToArray();
    }

    private void Meet()
    {
        if (!_barrier.SignalAndWait(Timeout)) throw new TimeoutException("a rank did not reach the collective (ranks out of step)");
    }

    private sealed class FakeRank(FakeWorld world, int rank) : ICommunicator
    {
        public int Size => world.Size;

        public int Rank => rank;

        public void Barrier() => world.Meet();

        public bool AllAgree(bool value)
        {
            world._votes[rank] = value;
            world.Meet();
            var all = world._votes.All(v => v);
            world.Meet(); // nobody votes again before everyone has read
            return all;
        }

        public string Broadcast(string value)
        {
            if (rank == 0) world._values[0] = value;
            world.Meet();
            var result = world._values[0];
            world.Meet();
            return result;
        }

        public int Broadcast(int value) => int.Parse(Broadcast(value.ToString(System.Globalization.CultureInfo.InvariantCulture)), System.Globalization.CultureInfo.InvariantCulture);

        public void AllReduceSum(Span<float> values)
        {
            world._floats[rank] = values.ToArray();
            world.Meet();
            for (var i = 0; i < values.Length; i++)
            {
                var sum = 0f;
                foreach (var part in world._floats) sum += part[i];
                values[i] = sum;
            }
            world.Meet();
        }

        public void AllGather(ReadOnlySpan<float> mine, Span<float> all)
        {
            world._floats[rank] = mine.ToArray();
            world.Meet();
            for (var r = 0; r < world.Size; r++) world._floats[r].CopyTo(all[(r * mine.Length)..]);
            world.Meet();
        }
    }
}
