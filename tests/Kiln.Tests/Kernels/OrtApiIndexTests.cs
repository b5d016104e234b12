using System.Reflection;
using Microsoft.ML.OnnxRuntime;
using Xunit;

namespace Kiln.Tests.Kernels;

/// <summary>
/// The OrtApi table indices Kernels/OrtNative uses, against the Microsoft.ML.OnnxRuntime package's own
/// mirror of the table (its OrtApi struct, one pointer field per C function, in the header's order).
/// </summary>
public sealed class OrtApiIndexTests
{
    [Theory]
    [InlineData("CreateStatus", 0)]
    [InlineData("GetErrorMessage", 2)]
    [InlineData("CreateCustomOpDomain", 26)]
    [InlineData("CustomOpDomain_Add", 27)]
    [InlineData("AddCustomOpDomain", 28)]
    [InlineData("GetTensorMutableData", 51)]
    [InlineData("GetTensorElementType", 60)]
    [InlineData("GetDimensionsCount", 61)]
    [InlineData("GetDimensions", 62)]
    [InlineData("GetTensorTypeAndShape", 65)]
    [InlineData("KernelContext_GetInputCount", 88)]
    [InlineData("KernelContext_GetInput", 90)]
    [InlineData("KernelContext_GetOutput", 91)]
    [InlineData("ReleaseStatus", 93)]
    [InlineData("ReleaseTensorTypeAndShapeInfo", 99)]
    [InlineData("ReleaseCustomOpDomain", 101)]
    [InlineData("KernelContext_ParallelFor", 274)]
    public void Kiln_uses_the_index_the_package_gives(string function, int index)
    {
        var table = typeof(SessionOptions).Assembly.GetType("Microsoft.ML.OnnxRuntime.OrtApi", throwOnError: true)!;
        var fields = table.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).Select(f => f.Name).ToList();
        Assert.True(fields.Count > 274, $"the package's OrtApi has {fields.Count} fields");
        Assert.Equal(index, fields.IndexOf(function));
    }
}
