using Kiln.Export;

namespace Kiln.Models;

/// <summary>Activation functions that several families share, in the primitive form of their Hugging Face code.</summary>
public static class Activations
{
    /// <summary>
    /// GELU with the tanh approximation: GPT-2's gelu_new (NewGELUActivation) and Gemma's
    /// gelu_pytorch_tanh, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    /// </summary>
    public static Tensor GeluTanh(Tensor x) =>
        x * 0.5 * (((x + x.Pow(3) * 0.044715) * Math.Sqrt(2 / Math.PI)).Tanh() + 1.0);
}
