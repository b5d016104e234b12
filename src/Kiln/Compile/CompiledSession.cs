using Kiln.Kernels;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace Kiln.Compile;

/// <summary>
/// An ONNX Runtime session over a model from <see cref="OnnxGraphBuilder"/> whose external
/// initializers are wrapped, without copying, over native memory the caller owns. Owns the session,
/// its options and the wrapping OrtValues, and disposes them together; the memory itself stays the
/// caller's and must outlive this object.
/// </summary>
public sealed class CompiledSession : IDisposable
{
    private readonly SessionOptions _options;
    private readonly List<OrtValue> _initializers;
    private readonly RunOptions _runOptions = new();
    private readonly KilnOpDomain? _kilnOps;

    // ORT adds a custom op domain to ONNX's process-wide table of domains while it creates the session, and two
    // sessions doing so at once can both find the domain missing: the second then fails ("domain is already exist").
    // Seen with the ranks of a tensor-parallel model in one process; sessions with Kiln's kernels are created one at a time.
    private static readonly Lock CustomDomainRegistration = new();

    private CompiledSession(InferenceSession session, SessionOptions options, List<OrtValue> initializers, bool prepacking, KilnOpDomain? kilnOps)
    {
        Session = session;
        _options = options;
        _initializers = initializers;
        Prepacking = prepacking;
        _kilnOps = kilnOps;
    }

    public InferenceSession Session { get; }

    /// <summary>Milliseconds this session's all-reduce nodes have spent summing over the ranks (0 for one rank).</summary>
    public double AllReduceMs => _kilnOps?.AllReduce.ElapsedMs ?? 0;

    /// <summary>Whether ORT was allowed to pre-pack weights (the setting the session was created with).</summary>
    public bool Prepacking { get; }

    /// <summary>
    /// Creates the session; a model ORT rejects, or a missing or extra initializer, raises a <see cref="KilnException"/> saying why.
    /// <paramref name="world"/> is the ranks the model's all-reduce nodes sum over (default: this process alone).
    /// </summary>
    public static CompiledSession Create(byte[] model, IReadOnlyList<ExternalInitializer> initializers, SessionSettings? settings = null,
        Distributed.ICommunicator? world = null)
    {
        settings ??= SessionSettings.Default;
        var options = new SessionOptions { GraphOptimizationLevel = settings.Optimization };
        var values = new List<OrtValue>(initializers.Count);
        KilnOpDomain? kilnOps = null;
        try
        {
            if (settings.IntraOpThreads is { } threads) options.IntraOpNumThreads = threads;
            var prepacking = settings.Prepacking ?? true;
            if (!prepacking) options.AddSessionConfigEntry("session.disable_prepacking", "1");
            options.AddSessionConfigEntry("session.intra_op.allow_spinning", settings.Spinning ? "1" : "0");
            var proto = ModelProto.Parser.ParseFrom(model);
            CheckSupplied(proto, initializers);
            if (proto.Graph.Node.Any(n => n.Domain == CustomOpKernel.Domain))
                kilnOps = KilnOpDomain.Register(options, settings.IntraOpThreads ?? Environment.ProcessorCount, world ?? Distributed.SingleProcess.Instance);
            foreach (var init in initializers)
            {
                if (init.ByteLength != init.ExpectedByteLength)
                    throw new KilnException($"external initializer {init.Name}: {init.ByteLength} bytes for shape [{string.Join(", ", init.Shape)}] of {init.DType} ({init.ExpectedByteLength} bytes)");
                var value = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, init.DType.ToOrt(), init.Shape, init.Data, init.ByteLength);
                values.Add(value);
                options.AddInitializer(init.Name, value);
            }
            InferenceSession session;
            if (kilnOps is null) session = new InferenceSession(model, options);
            else lock (CustomDomainRegistration) session = new InferenceSession(model, options);
            return new CompiledSession(session, options, values, prepacking, kilnOps);
        }
        catch (Exception e) when (e is not KilnException)
        {
            Release(options, values, kilnOps);
            throw new KilnException($"ONNX Runtime could not create a session for the model: {e.Message}", e);
        }
        catch
        {
            Release(options, values, kilnOps);
            throw;
        }
    }

    /// <summary>
    /// Runs the model on int64 inputs and returns one float32 output. Inputs are pinned, not copied;
    /// the output is copied once into the returned array.
    /// </summary>
    public FloatTensor Run(IReadOnlyDictionary<string, Int64Tensor> inputs, string outputName)
    {
        var names = new List<string>(inputs.Count);
        var values = new List<OrtValue>(inputs.Count);
        try
        {
            foreach (var (name, tensor) in inputs)
            {
                names.Add(name);
                values.Add(OrtValue.CreateTensorValueFromMemory(tensor.Data, tensor.Shape));
            }
            using var outputs = Session.Run(_runOptions, names, values, [outputName]);
            var output = outputs[0];
            var info = output.GetTensorTypeAndShape();
            if (info.ElementDataType != Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float)
                throw new KilnException($"output {outputName} is {info.ElementDataType}, not float32");
            return new FloatTensor(output.GetTensorDataAsSpan<float>().ToArray(), info.Shape);
        }
        catch (OnnxRuntimeException e)
        {
            throw new KilnException($"ONNX Runtime failed to run the model: {e.Message}", e);
        }
        finally
        {
            foreach (var value in values) value.Dispose();
        }
    }

    public void Dispose()
    {
        _runOptions.Dispose();
        Session.Dispose();
        Release(_options, _initializers, _kilnOps);
    }

    // ORT's own errors for these name the symptom (a missing file ".", a size mismatch), not the cause.
    private static void CheckSupplied(ModelProto model, IReadOnlyList<ExternalInitializer> initializers)
    {
        var declared = model.Graph.Initializer
            .Where(t => t.DataLocation == TensorProto.Types.DataLocation.External
                && t.ExternalData.Any(e => e.Key == "location" && e.Value == OnnxGraphBuilder.ExternalLocation))
            .Select(t => t.Name)
            .ToHashSet(StringComparer.Ordinal);
        var supplied = initializers.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var missing = declared.Except(supplied).Order(StringComparer.Ordinal).ToList();
        if (missing.Count > 0) throw new KilnException($"external initializers declared by the model but not supplied: {string.Join(", ", missing)}");
        var unknown = supplied.Except(declared).Order(StringComparer.Ordinal).ToList();
        if (unknown.Count > 0) throw new KilnException($"supplied initializers that the model does not declare external: {string.Join(", ", unknown)}");
    }

    // The custom op domain last: ORT may use it until the session and its options are gone.
    private static void Release(SessionOptions options, List<OrtValue> values, KilnOpDomain? kilnOps)
    {
        foreach (var value in values) value.Dispose();
        options.Dispose();
        kilnOps?.Dispose();
    }
}
