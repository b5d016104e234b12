using Kiln.Cache;
using Kiln.Chat;
using Kiln.Runtime;

namespace Kiln.Server;

/// <summary>
/// The model a server runs, as its loader made it: the loaded model, its tokenizer, its stop ids, the name
/// clients call it by (<paramref name="Id"/>, the "model" field), what the snapshot cache did at load, and
/// its chat template, or why it has none (<paramref name="ChatTemplateProblem"/>: chat requests get it as a 400).
/// </summary>
public sealed record ServedModel(string Id, LoadedModel Model, Tokenizer Tokenizer, IReadOnlySet<int> StopIds, CacheReport? Cache,
    ChatTemplate? ChatTemplate, string? ChatTemplateProblem) : IDisposable
{
    public void Dispose()
    {
        Tokenizer.Dispose();
        Model.Dispose();
    }
}
