using System.Text;
using Xunit;

namespace Kiln.Tests.Checkpoints;

/// <summary>The one strict reader of a checkpoint's JSON files: what System.Text.Json accepts by default but Kiln refuses.</summary>
public sealed class JsonFileTests : IDisposable
{
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void ReadsAnObjectAndReturnsNullForAMissingFile()
    {
        Assert.Equal(3, (int)Read("{\"a\": [1, 2], \"b\": {\"c\": 3}}")["b"]!["c"]!);
        Assert.Null(JsonFile.ReadObject(dir.File("absent.json")));
    }

    [Fact]
    public void DuplicateKeyIsNamedByItsPath()
    {
        AssertRefused("{\"a\": 1, \"a\": 2}", "a", "duplicate key");
        AssertRefused("{\"rope_scaling\": {\"factor\": 1, \"factor\": 2}}", "rope_scaling.factor", "duplicate key");
        AssertRefused("{\"x\": [{}, {\"k\": 1, \"k\": 1}]}", "x[1].k", "duplicate key");
    }

    [Fact]
    public void SameKeyInDifferentObjectsIsFine() => Read("{\"a\": {\"k\": 1}, \"b\": {\"k\": 2}}");

    [Fact]
    public void InvalidUtf8IsRefusedWithItsLine()
    {
        var path = dir.File("bad.json");
        File.WriteAllBytes(path, [.. "{\n\"a\": \""u8.ToArray(), 0xFF, .. "\"}"u8.ToArray()]);
        var e = Assert.Throws<KilnException>(() => JsonFile.ReadObject(path));
        Assert.Equal($"{path}: line 2: invalid UTF-8 at byte 8", e.Message);
    }

    [Fact]
    public void LoneSurrogateEscapeIsRefused() => AssertRefused("{\"a\": \"x\\ud800y\"}", "a", "lone surrogate");

    [Fact]
    public void NumberBeyondADoubleIsRefused()
    {
        AssertRefused("{\"eps\": 1e400}", "eps", "out of range");
        AssertRefused("{\"eps\": [-1e400]}", "eps[0]", "out of range");
    }

    [Fact]
    public void MalformedJsonNamesTheLine()
    {
        var path = dir.File("m.json");
        File.WriteAllText(path, "{\n\"a\": 1,\n}");
        var e = Assert.Throws<KilnException>(() => JsonFile.ReadObject(path));
        Assert.StartsWith($"{path}: line 3: malformed JSON", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void NotAnObject() => AssertRefused("[1]", "top level", "expected a JSON object");

    [Fact]
    public void ADirectoryInPlaceOfTheFileIsRefused()
    {
        var path = Directory.CreateDirectory(dir.File("config.json")).FullName;
        var e = Assert.Throws<KilnException>(() => JsonFile.ReadObject(path));
        Assert.Equal($"{path}: not a regular file (a directory)", e.Message);
    }

    [Fact]
    public async Task AFifoIsRefusedWithoutWaitingForAWriter()
    {
        var path = dir.File("fifo.json");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [path])!) mkfifo.WaitForExit();
        // A blocked open would surface as a TimeoutException instead.
        var e = await Assert.ThrowsAsync<KilnException>(() => Task.Run(() => JsonFile.ReadObject(path)).WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Equal($"{path}: not a regular file (a FIFO)", e.Message);
    }

    [Fact]
    public void AFollowedLinkToARegularFileIsRead()
    {
        File.WriteAllText(dir.File("target.json"), "{\"a\": 1}");
        File.CreateSymbolicLink(dir.File("link.json"), dir.File("target.json"));
        Assert.Equal(1, (int)JsonFile.ReadObject(dir.File("link.json"))!["a"]!);
    }

    private System.Text.Json.Nodes.JsonObject Read(string json)
    {
        var path = dir.File($"{Guid.NewGuid():N}.json");
        File.WriteAllBytes(path, Encoding.UTF8.GetBytes(json));
        return JsonFile.ReadObject(path)!;
    }

    private void AssertRefused(string json, string field, string problem)
    {
        var path = dir.File($"{Guid.NewGuid():N}.json");
        File.WriteAllBytes(path, Encoding.UTF8.GetBytes(json));
        var e = Assert.Throws<KilnException>(() => JsonFile.ReadObject(path));
        Assert.StartsWith($"{path}: {field}: ", e.Message);
        Assert.Contains(problem, e.Message);
    }
}
