using Kiln.Kernels;
using Xunit;

namespace Kiln.Tests.Kernels;

public sealed class WorkerTeamTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Every_part_runs_exactly_once_per_job(int size)
    {
        using var team = new WorkerTeam(size);
        var counts = new int[size];
        for (var job = 0; job < 200; job++) team.Run(part => Interlocked.Increment(ref counts[part]));
        Assert.All(counts, c => Assert.Equal(200, c));
    }

    [Fact]
    public void A_failing_worker_part_fails_the_job_and_the_team_keeps_working()
    {
        using var team = new WorkerTeam(2);
        var error = Assert.Throws<AggregateException>(() => team.Run(part =>
        {
            if (part == 1) throw new InvalidOperationException("part 1 failed");
        }));
        Assert.Equal("part 1 failed", error.InnerException!.Message);
        var ran = 0;
        team.Run(_ => Interlocked.Increment(ref ran));
        Assert.Equal(2, ran);
    }

    [Fact]
    public void A_disposed_team_refuses_jobs()
    {
        var team = new WorkerTeam(2);
        team.Dispose();
        Assert.Throws<ObjectDisposedException>(() => team.Run(_ => { }));
    }
}
