using NativeReasoner.Nn;
using Xunit;

namespace NativeReasoner.Tests.Nn;

public sealed class ModuleTests
{
    private static readonly string[] ExpectedParameterNames =
    [
        "emb",
        "layers.0.q.weight", "layers.0.q.bias", "layers.0.out.weight",
        "layers.1.q.weight", "layers.1.q.bias", "layers.1.out.weight",
    ];

    private static readonly string[] ExpectedStateKeys =
    [
        // torch's order: a module's own parameters, then its own buffers, then its children.
        "emb",
        "layers.0.scale", "layers.0.q.weight", "layers.0.q.bias", "layers.0.out.weight",
        "layers.1.scale", "layers.1.q.weight", "layers.1.q.bias", "layers.1.out.weight",
    ];

    [Fact]
    public void NamedParameters_Are_Dotted_Paths_In_Registration_Order()
    {
        using var model = new TinyModel(1);
        var named = model.NamedParameters().ToList();
        Assert.Equal(ExpectedParameterNames, named.Select(n => n.Name));
        // Each parameter carries its full name afterwards (error messages use it).
        Assert.All(named, n => Assert.Equal(n.Name, n.Param.Name));
        Assert.Equal(named.Select(n => n.Param), model.Parameters());
        Assert.Equal(3 * 4 + 2 * (16 + 4 + 8), model.ParameterCount);
    }

    [Fact]
    public void NamedModules_Lists_The_Root_And_Every_Descendant()
    {
        using var model = new TinyModel(1);
        Assert.Equal(
            ["", "layers", "layers.0", "layers.0.q", "layers.0.out", "layers.1", "layers.1.q", "layers.1.out"],
            model.NamedModules().Select(m => m.Name));
        Assert.Equal(["emb"], model.NamedParameters().Take(1).Select(n => n.Name));
        Assert.Equal(["layers.0.scale", "layers.1.scale"], model.NamedBuffers().Select(b => b.Name));
        Assert.Equal(["layers"], model.NamedChildren().Select(c => c.Name));
    }

    [Fact]
    public void StateDict_Holds_Parameters_And_Buffers_Themselves()
    {
        using var model = new TinyModel(1);
        var state = model.StateDict();
        Assert.Equal(ExpectedStateKeys, state.Keys);
        Assert.Same(model.Emb, state["emb"]);
        Assert.Same(model.Layers[1].Scale, state["layers.1.scale"]);
        Assert.IsType<Parameter>(state["layers.0.q.bias"]);
        Assert.IsNotType<Parameter>(state["layers.0.scale"]);
    }

    [Fact]
    public void Tied_Parameter_Is_Listed_Once_But_Saved_Under_Each_Name()
    {
        using var model = new TinyModel(1);
        model.Register("emb_tied", model.Emb);
        Assert.Equal(ExpectedParameterNames, model.NamedParameters().Select(n => n.Name));
        var state = model.StateDict();
        Assert.Same(state["emb"], state["emb_tied"]);
    }

    [Fact]
    public void StateDict_Round_Trip_Copies_Values()
    {
        using var a = new TinyModel(1);
        using var b = new TinyModel(2);
        Assert.NotEqual(a.Emb.ToArray(), b.Emb.ToArray());
        using (Tensor.NoGrad()) a.Layers[0].Scale.Fill_(3f);

        var result = b.LoadStateDict(a.StateDict());
        Assert.Empty(result.MissingKeys);
        Assert.Empty(result.UnexpectedKeys);
        foreach (var (name, t) in a.StateDict())
            Assert.Equal(t.ToArray(), b.StateDict()[name].ToArray());
        // Copied, not shared: b keeps its own tensors.
        Assert.NotSame(a.Emb, b.Emb);
        Assert.True(b.Emb.RequiresGrad);
        using (Tensor.NoGrad()) a.Emb.Fill_(7f);
        Assert.DoesNotContain(7f, b.Emb.ToArray());
    }

    [Fact]
    public void LoadStateDict_Accepts_A_Plain_Dictionary_Of_Other_Tensors()
    {
        using var model = new TinyModel(1, layers: 0);
        using var value = Tensor.FromArray(Enumerable.Range(0, 12).Select(i => (float)i).ToArray(), 3, 4);
        model.LoadStateDict(new Dictionary<string, Tensor> { ["emb"] = value });
        Assert.Equal(value.ToArray(), model.Emb.ToArray());
        Assert.False(value.IsDisposed);
    }

    [Fact]
    public void LoadStateDict_Missing_Key_Names_It()
    {
        using var a = new TinyModel(1);
        using var b = new TinyModel(2);
        var state = a.StateDict().Where(kv => kv.Key != "layers.1.q.bias").ToDictionary();
        var ex = Assert.Throws<KeyNotFoundException>(() => b.LoadStateDict(state));
        Assert.Contains("missing", ex.Message);
        Assert.Contains("'layers.1.q.bias'", ex.Message);
    }

    [Fact]
    public void LoadStateDict_Unexpected_Key_Names_It()
    {
        using var a = new TinyModel(1);
        using var b = new TinyModel(2);
        using var extra = Tensor.Zeros(2);
        var state = a.StateDict().ToDictionary();
        state["layers.7.q.weight"] = extra;
        var ex = Assert.Throws<ArgumentException>(() => b.LoadStateDict(state));
        Assert.Contains("unexpected", ex.Message);
        Assert.Contains("'layers.7.q.weight'", ex.Message);
    }

    [Fact]
    public void LoadStateDict_Shape_Mismatch_Names_Tensor_And_Both_Shapes_And_Changes_Nothing()
    {
        using var a = new TinyModel(1);
        using var b = new TinyModel(2);
        var before = b.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        using var wrong = Tensor.Zeros(4, 5);
        var state = a.StateDict().ToDictionary();
        state["layers.1.q.weight"] = wrong;
        var ex = Assert.Throws<ArgumentException>(() => b.LoadStateDict(state));
        Assert.Contains("'layers.1.q.weight'", ex.Message);
        Assert.Contains("[4, 5]", ex.Message);
        Assert.Contains("[4, 4]", ex.Message);
        // Checked before anything was copied: even the entries before the bad one are untouched.
        foreach (var (name, t) in b.StateDict()) Assert.Equal(before[name], t.ToArray());
        // A shape mismatch is an error even when not strict.
        Assert.Throws<ArgumentException>(() => b.LoadStateDict(state, strict: false));
    }

    [Fact]
    public void LoadStateDict_Not_Strict_Reports_Skipped_Keys()
    {
        using var a = new TinyModel(1);
        using var b = new TinyModel(2);
        using var extra = Tensor.Zeros(2);
        var state = a.StateDict().Where(kv => kv.Key != "emb").ToDictionary();
        state["head.weight"] = extra;
        var result = b.LoadStateDict(state, strict: false);
        Assert.Equal(["emb"], result.MissingKeys);
        Assert.Equal(["head.weight"], result.UnexpectedKeys);
        Assert.Equal(a.Layers[1].Out.Weight.ToArray(), b.Layers[1].Out.Weight.ToArray());
        Assert.NotEqual(a.Emb.ToArray(), b.Emb.ToArray());
    }

    [Fact]
    public void Train_And_Eval_Propagate_To_Every_Descendant()
    {
        using var model = new TinyModel(1);
        Assert.All(model.NamedModules(), m => Assert.True(m.Module.IsTraining));
        Assert.Same(model, model.Eval());
        Assert.All(model.NamedModules(), m => Assert.False(m.Module.IsTraining));
        // A child added to a module in eval mode joins in eval mode.
        model.Layers.Add(new TinyBlock(new Generator(5)));
        Assert.False(model.Layers[2].Q.IsTraining);
        model.Train();
        Assert.All(model.NamedModules(), m => Assert.True(m.Module.IsTraining));
        model.Layers[0].Train(false);
        Assert.True(model.IsTraining);
        Assert.False(model.Layers[0].Out.IsTraining);
        Assert.True(model.Layers[1].Out.IsTraining);
    }

    [Fact]
    public void ZeroGrad_Drops_Every_Gradient()
    {
        using var model = new TinyModel(1);
        foreach (var p in model.Parameters())
            using (TensorScope.Suspend())
                p.Grad = Tensor.Ones(p.Shape.ToArray());
        model.ZeroGrad();
        Assert.All(model.Parameters(), p => Assert.Null(p.Grad));
    }

    [Fact]
    public void Registration_Rejects_Bad_And_Duplicate_Names()
    {
        using var model = new TinyModel(1, layers: 0);
        using var t = Tensor.Zeros(1);
        var p = new Parameter(t);
        Assert.Throws<ArgumentException>(() => model.Register("emb", p));
        Assert.Throws<ArgumentException>(() => model.Register("a.b", p));
        Assert.Throws<ArgumentException>(() => model.Register("", p));
        Assert.Throws<ArgumentException>(() => model.Child("layers", new ModuleList()));
        p.Dispose();
    }

    [Fact]
    public void Dispose_Frees_Parameters_Buffers_And_Children()
    {
        var model = new TinyModel(1);
        var all = model.StateDict().Values.ToList();
        var child = model.Layers[0];
        model.Dispose();
        Assert.All(all, t => Assert.True(t.IsDisposed));
        Assert.True(child.IsDisposed);
        model.Dispose(); // idempotent
    }

    [Fact]
    public void Buffers_Registered_Inside_A_Scope_Outlive_It()
    {
        TinyModel model;
        using (new TensorScope()) model = new TinyModel(1);
        using (model)
        {
            Assert.All(model.StateDict().Values, t => Assert.False(t.IsDisposed));
            Assert.Equal([0.5f, 0.5f], model.Layers[0].Scale.ToArray());
        }
    }

    [Fact]
    public void Module_Without_Forward_Says_So()
    {
        using var list = new ModuleList();
        using var x = Tensor.Zeros(1);
        var ex = Assert.Throws<NotSupportedException>(() => list.Forward(x));
        Assert.Contains("ModuleList", ex.Message);
    }
}
