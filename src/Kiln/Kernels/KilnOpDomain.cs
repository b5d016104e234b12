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

    private KilnOpDomain(nint domain, LinearKernel linear)
    {
        _domain = domain;
        _linear = linear;
    }

    /// <param name="threads">Threads each product is split over.</param>
    public static KilnOpDomain Register(SessionOptions options, int threads)
    {
        var linear = new LinearKernel(threads);
        nint domain = 0;
        try
        {
            domain = OrtNative.CreateCustomOpDomain(LinearKernel.Domain);
            OrtNative.CustomOpDomainAdd(domain, linear.Op);
            OrtNative.AddCustomOpDomain(options.DangerousGetHandle(), domain);
            return new KilnOpDomain(domain, linear);
        }
        catch
        {
            if (domain != 0) OrtNative.ReleaseCustomOpDomain(domain);
            linear.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (_domain == 0) return;
        OrtNative.ReleaseCustomOpDomain(_domain);
        _domain = 0;
        _linear.Dispose();
    }
}
