namespace NativeReasoner.Kernels;

/// <summary>Elementwise functions of one input. <c>alpha</c> is the scalar some of them take.</summary>
public enum UnaryOp
{
    /// <summary>y = -x</summary>
    Neg,
    /// <summary>y = exp(x)</summary>
    Exp,
    /// <summary>y = ln(x)</summary>
    Log,
    /// <summary>y = sqrt(x)</summary>
    Sqrt,
    /// <summary>y = 1/sqrt(x)</summary>
    Rsqrt,
    /// <summary>y = x^alpha</summary>
    Pow,
    /// <summary>y = x * sigmoid(x)</summary>
    Silu,
    /// <summary>y = 1/(1+exp(-x))</summary>
    Sigmoid,
    /// <summary>y = tanh(x)</summary>
    Tanh,
    /// <summary>y = alpha * x</summary>
    Scale,
    /// <summary>y = x + alpha</summary>
    AddScalar,
    /// <summary>y = x * x</summary>
    Square,
    /// <summary>y = max(x, 0)</summary>
    Relu,
    /// <summary>y = |x|</summary>
    Abs,
}

/// <summary>Elementwise functions of two inputs, with broadcasting.</summary>
public enum BinaryOp
{
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
}

/// <summary>Reductions over one axis.</summary>
public enum ReduceOp
{
    Sum,
    Mean,
    Max,
    Min,
}
