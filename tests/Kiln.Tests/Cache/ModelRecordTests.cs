using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Models;
using Kiln.Transforms;
using Kiln.Transforms.WeightLoad;

namespace Kiln.Tests.Cache;

/// <summary>
/// The model checks a restore applies (<see cref="ModelRecord"/>): a fresh compile's graph fits its own
/// model at every snapshot point, for every family (or the cache would never hit), and a graph compiled
/// for another model does not.
/// </summary>
public sealed class ModelRecordTests
{
    public static TheoryData<string> Families => ["default", "bf16", "llama_gqa", "mistral", "qwen2", "phi3"];

    [Theory]
    [MemberData(nameof(Families))]
    public void EverySnapshotPointOfAFreshCompileFitsItsModel(string family)
    {
        using var temp = new TempDir();
        using var checkpoint = Checkpoint.Open(FamilyModels.Directory(family, temp));
        var record = ModelRecord.Of(checkpoint);
        var pipeline = PipelineConfig.Load();
        var points = 0;
        ModelCompiler.Resume(ModelCompiler.Export(checkpoint), checkpoint, pipeline, 0, atPoint: (index, graph) =>
        {
            points++;
            var weightsBound = pipeline.Entries.Take(index).Any(e => e is TransformStep { Transform: LoadWeightsTransform });
            Assert.Null(record.Mismatch(graph, weightsBound));
        });
        Assert.Equal(2, points);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void TheSignatureIsWhatTheExportDeclares(string family)
    {
        using var temp = new TempDir();
        using var checkpoint = Checkpoint.Open(FamilyModels.Directory(family, temp));
        var export = ModelCompiler.Export(checkpoint);
        var signature = ModelFactory.Signature(checkpoint.Config, Path.Combine(checkpoint.Directory, Checkpoint.ConfigFileName));
        Assert.Equal(export.Model, signature.Facts);
        Assert.Equal(export.Inputs.Select(i => (i.Name, i.Type)), signature.Inputs);
        Assert.Equal(export.Outputs[0].Type, signature.Logits);
    }

    [Fact]
    public void ARestoredSnapshotCarriesTheModelFactsOfTheExport()
    {
        using var cache = new CacheDir();
        using var checkpoint = Checkpoint.Open(TestPaths.DefaultModel);
        var facts = ModelFactory.Read(checkpoint.Config, checkpoint.ConfigPath).Facts;

        var cold = CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());
        var warm = CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());

        Assert.Equal(("miss", "hit"), (cold.Cache!.Status, warm.Cache!.Status));
        Assert.Equal(facts, cold.Graph.Model);
        Assert.Equal(facts, warm.Graph.Model);
    }

    [Fact]
    public void AGraphOfAnotherModelDoesNotFit()
    {
        using var llama = Checkpoint.Open(TestPaths.Oracle("llama_gqa"));
        using var qwen = Checkpoint.Open(TestPaths.Oracle("qwen2"));
        var graph = ModelCompiler.Compile(qwen, PipelineConfig.Load()).Graph;
        Assert.NotNull(ModelRecord.Of(llama).Mismatch(graph, weightsBound: true));
        Assert.Null(ModelRecord.Of(qwen).Mismatch(graph, weightsBound: true));
    }
}
