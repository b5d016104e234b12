using Kiln.Cache;
using Kiln.Runtime;

namespace Kiln.Server;

/// <summary>
/// The model a server runs, as its loader made it: the loaded model, its tokenizer, its stop ids, the name
/// clients call it by (<paramref name="Id"/>, the "model" field), and what the snapshot cache did at load.
/// </summary>
public sealed record ServedModel(string Id, LoadedModel Model, Tokenizer Tokenizer, IReadOnlySet<int> StopIds, CacheReport? Cache) : IDisposable
{
    public void Dispose()
    {
        Tokenizer.Dispose();
        Model.Dispose();
    }
}
