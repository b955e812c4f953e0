namespace Alignment.Export;

/// <summary>How the matrices of an exported GGUF are stored (llama.cpp's <c>--outtype</c>); vectors (norms, biases) stay float32.</summary>
public enum GgufFileType
{
    /// <summary><c>f32</c>: float32, exact.</summary>
    F32,

    /// <summary><c>f16</c>: IEEE half precision (11 significant bits).</summary>
    F16,

    /// <summary><c>bf16</c>: bfloat16 (8 significant bits, float32's range).</summary>
    BF16,

    /// <summary><c>q8_0</c>: blocks of 32 int8 values with a float16 scale (8.5 bits a weight); a matrix whose rows are not a multiple of 32 is stored as f16.</summary>
    Q8_0,
}
