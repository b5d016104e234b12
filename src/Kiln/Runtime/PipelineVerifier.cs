using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Graph.Json;
using Kiln.Transforms;
using Kiln.Weights;

namespace Kiln.Runtime;

/// <summary>How far one transform's graph is from the exported graph on the verifier's random input.</summary>
public sealed record VerificationStep(string Transform, double MaxAbsDifference, bool Passed);

/// <summary>
/// Runs the graph after each transform on one random input (real weights, real ONNX Runtime) and
/// compares its logits with the exported reference graph's, so a transform that changes the model's
/// output is named. Creates a session per transform: meant for small models and tests. It lives with the
/// runtime it runs on; the pipeline only calls it back (an observer of <c>ModelCompiler.Compile</c>).
/// Under tensor parallelism every rank checks its own graph: a sharded graph's all-reduces sum over
/// <c>world</c>, so all ranks must check the same steps in the same order, as the compile calls them.
/// </summary>
public sealed class PipelineVerifier
{
    private readonly string _modelDirectory;
    private readonly long[] _ids;
    private readonly long[] _positions;
    private readonly float[] _reference;
    private readonly Distributed.ICommunicator? _world;

    public PipelineVerifier(string modelDirectory, ModelGraph exported, double tolerance = 1e-3, int seed = 1234, Distributed.ICommunicator? world = null)
    {
        _modelDirectory = modelDirectory;
        _world = world;
        Tolerance = tolerance;
        using var model = Run(exported);
        var random = new Random(seed);
        var length = Math.Min(8, model.MaxPositions);
        _ids = Enumerable.Range(0, length).Select(_ => (long)random.Next(model.VocabSize)).ToArray();
        _positions = Enumerable.Range(0, length).Select(p => (long)p).ToArray();
        _reference = model.Forward(_ids, _positions);
    }

    public double Tolerance { get; }

    public List<VerificationStep> Steps { get; } = [];

    /// <summary>Checks the graph as it stands after <paramref name="transform"/>; the first failure throws.</summary>
    public VerificationStep Check(string transform, ModelGraph graph)
    {
        using var model = Run(graph);
        var logits = model.Forward(_ids, _positions);
        var difference = logits.Length == _reference.Length
            ? logits.Zip(_reference, (a, b) => (double)Math.Abs(a - b)).Max()
            : double.PositiveInfinity;
        var step = new VerificationStep(transform, difference, difference <= Tolerance);
        Steps.Add(step);
        if (!step.Passed)
        {
            throw new VerificationException(
                $"verification failed: transform {transform} changed the logits (max |difference| {difference:G3} > tolerance {Tolerance:G3})", step);
        }
        return step;
    }

    // A copy of the graph (through its JSON form) runs on its own session, leaving the pipeline's graph untouched.
    private LoadedModel Run(ModelGraph graph)
    {
        var copy = GraphSerializer.Copy(graph);
        var checkpoint = Checkpoint.Open(_modelDirectory);
        try
        {
            // A graph from before weight_load has unbound recipes: bind the copy (once: binding starts a GGUF
            // tensor's recipe with its storage steps).
            if (!graph.History.Any(h => h.Stage == Stage.WeightLoad.Name() && !h.Skipped)) WeightBinder.Bind(copy, checkpoint);
            return LoadedModel.Create(checkpoint, copy, world: _world);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }
}

/// <summary>A transform changed the model's output: a compiler bug, named with its measurement.</summary>
public sealed class VerificationException(string message, VerificationStep step) : Exception(message)
{
    public VerificationStep Step { get; } = step;
}
