using Microsoft.ML.OnnxRuntime;

namespace Kiln.Kernels;

/// <summary>
/// Kiln's custom ops (domain <see cref="CustomOpKernel.Domain"/>) registered with one session's options:
/// the ORT domain and the kernels behind it. ORT uses them for the session's whole life, so this is
/// disposed only after the session.
/// </summary>
public sealed unsafe class KilnOpDomain : IDisposable
{
    private nint _domain;
    private readonly CustomOpKernel[] _kernels;

    private KilnOpDomain(nint domain, CustomOpKernel[] kernels)
    {
        _domain = domain;
        _kernels = kernels;
        AllReduce = kernels.OfType<AllReduceKernel>().Single();
    }

    /// <summary>The session's all-reduce kernel (it keeps the time spent in the collectives).</summary>
    public AllReduceKernel AllReduce { get; }

    /// <param name="threads">Threads each product is split over.</param>
    /// <param name="world">The ranks <c>ai.kiln.AllReduce</c> sums over.</param>
    public static KilnOpDomain Register(SessionOptions options, int threads, Distributed.ICommunicator world)
    {
        CustomOpKernel[] kernels =
        [
            new LinearKernel(threads),
            .. Enum.GetValues<Weights.QuantScheme>().Select(s => new QuantizedLinearKernel(threads, s)),
            new AllReduceKernel(world),
        ];
        nint domain = 0;
        try
        {
            domain = OrtNative.CreateCustomOpDomain(CustomOpKernel.Domain);
            foreach (var kernel in kernels) OrtNative.CustomOpDomainAdd(domain, kernel.Op);
            OrtNative.AddCustomOpDomain(options.DangerousGetHandle(), domain);
            return new KilnOpDomain(domain, kernels);
        }
        catch
        {
            if (domain != 0) OrtNative.ReleaseCustomOpDomain(domain);
            foreach (var kernel in kernels) kernel.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (_domain == 0) return;
        OrtNative.ReleaseCustomOpDomain(_domain);
        _domain = 0;
        foreach (var kernel in _kernels) kernel.Dispose();
    }
}
