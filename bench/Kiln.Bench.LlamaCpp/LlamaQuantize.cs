using LLama.Native;

namespace Kiln.Bench.LlamaCpp;

/// <summary>
/// llama.cpp's own quantizer (llama_model_quantize, through LLamaSharp's binding) on a GGUF this program
/// wrote. LLamaSharp's LLamaQuantizer.Quantize leaves output.weight unquantized unless asked; this calls
/// the native function with llama.cpp's default parameters instead (llama_model_quantize_default_params,
/// what the llama-quantize tool uses): output.weight gets llama.cpp's own choice for the file type (Q6_K
/// for Q4_0 and Q8_0 files when its rows are whole 256-element blocks, otherwise Q8_0), every other matrix
/// the file type's. With <c>pure</c>, every matrix gets the file type's type, output.weight included.
/// </summary>
internal static class LlamaQuantize
{
    public static void Run(string source, string destination, LLamaFtype ftype, bool pure, int threads)
    {
        // Loads the native library (NativeApi's static constructor picks the CPU variant); the params'
        // own P/Invoke does not trigger that.
        NativeApi.llama_empty_call();
        var parameters = LLamaModelQuantizeParams.Default();
        parameters.ftype = ftype;
        parameters.nthread = threads;
        parameters.pure = pure;
        var temp = destination + ".tmp";
        NativeLog.Clear();
        var status = NativeApi.llama_model_quantize(source, temp, ref parameters);
        if (status != 0) throw new InvalidOperationException($"llama_model_quantize {source} -> {ftype} failed ({status}): {NativeLog.Recent()}");
        File.Move(temp, destination, overwrite: true);
    }
}
