using Microsoft.ML.OnnxRuntime;

namespace Kiln.Kernels;

/// <summary>
/// Kiln's custom ops (domain <see cref="LinearKernel.Domain"/>) registered with one session's options:
/// the ORT domain and the kernels behind it. ORT uses them for the session's whole life, so this is
/// disposed only after the session.
/// </summary>
public sealed unsafe class KilnOpDomain : IDisposable
{
    private nint _domain;
    private readonly LinearKernel _linear;
    private readonly QuantizedLinearKernel[] _quantized;

    private KilnOpDomain(nint domain, LinearKernel linear, QuantizedLinearKernel[] quantized)
    {
        _domain = domain;
        _linear = linear;
        _quantized = quantized;
    }

    /// <param name="threads">Threads each product is split over.</param>
    public static KilnOpDomain Register(SessionOptions options, int threads)
    {
        var linear = new LinearKernel(threads);
        var quantized = Enum.GetValues<Weights.QuantScheme>().Select(s => new QuantizedLinearKernel(threads, s)).ToArray();
        nint domain = 0;
        try
        {
            domain = OrtNative.CreateCustomOpDomain(LinearKernel.Domain);
            OrtNative.CustomOpDomainAdd(domain, linear.Op);
            foreach (var kernel in quantized) OrtNative.CustomOpDomainAdd(domain, kernel.Op);
            OrtNative.AddCustomOpDomain(options.DangerousGetHandle(), domain);
            return new KilnOpDomain(domain, linear, quantized);
        }
        catch
        {
            if (domain != 0) OrtNative.ReleaseCustomOpDomain(domain);
            linear.Dispose();
            foreach (var kernel in quantized) kernel.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (_domain == 0) return;
        OrtNative.ReleaseCustomOpDomain(_domain);
        _domain = 0;
        _linear.Dispose();
        foreach (var kernel in _quantized) kernel.Dispose();
    }
}
