using System.Globalization;
using System.Text.Json;

namespace NativeReasoner.Model.Dense;

/// <summary>
/// The rotary embedding of a dense family: base θ and the optional context-extension scaling, as HF's
/// modeling_rope_utils reads it. Read from either spelling: <c>rope_theta</c> + <c>rope_scaling</c> (keyed by
/// <c>type</c> or <c>rope_type</c>), or transformers ≥ 5's <c>rope_parameters</c> (θ and the scaling in one block).
/// </summary>
public sealed record RopeParameters
{
    /// <summary>"default" (plain), "linear", "llama3" or "yarn".</summary>
    public string Type { get; init; } = "default";
    public double Theta { get; init; } = 10000.0;
    public double Factor { get; init; } = 1.0;

    /// <summary>llama3 and yarn: the pre-extension training length.</summary>
    public int OriginalMaxPositionEmbeddings { get; init; }

    /// <summary>llama3: wavelengths longer than L/low_freq_factor are fully interpolated.</summary>
    public double LowFreqFactor { get; init; } = 1.0;

    /// <summary>llama3: wavelengths shorter than L/high_freq_factor are kept.</summary>
    public double HighFreqFactor { get; init; } = 4.0;

    public double BetaFast { get; init; } = 32.0;
    public double BetaSlow { get; init; } = 1.0;

    /// <summary>yarn: the cos/sin factor; null = derived from factor (and mscale / mscale_all_dim).</summary>
    public double? AttentionFactor { get; init; }
    public double? Mscale { get; init; }
    public double? MscaleAllDim { get; init; }

    /// <summary>yarn: floor/ceil the correction range (HF's default true).</summary>
    public bool Truncate { get; init; } = true;

    public static IReadOnlyList<string> SupportedTypes => ["default", "linear", "llama3", "yarn"];

    /// <summary>Recognised HF types this engine does not implement (a clear error rather than plain RoPE).</summary>
    private static readonly string[] KnownUnsupported = ["dynamic", "longrope", "su", "mrope", "proportional"];

    /// <summary>Reads θ and the scaling from <paramref name="root"/> (a config.json object).</summary>
    public static RopeParameters FromJson(JsonElement root, double defaultTheta, int maxPositionEmbeddings)
    {
        double theta = ConfigFields.Dbl(root, "rope_theta", defaultTheta);
        JsonElement block;
        string prefix;
        if (ConfigFields.Present(root, "rope_parameters", out var rp))
        {
            if (rp.ValueKind != JsonValueKind.Object) throw new ModelConfigException("config: rope_parameters must " +
                "be an object");
            block = rp;
            prefix = "rope_parameters.";
            theta = ConfigFields.Dbl(rp, "rope_theta", theta, prefix);
        }
        else if (ConfigFields.Present(root, "rope_scaling", out var rs))
        {
            if (rs.ValueKind != JsonValueKind.Object) throw new ModelConfigException("config: rope_scaling must be " +
                "an object or null");
            block = rs;
            prefix = "rope_scaling.";
        }
        else return new RopeParameters { Theta = theta };

        string? type = ConfigFields.Present(block, "rope_type", out _)
            ? ConfigFields.Str(block, "rope_type", "", prefix)
            : ConfigFields.Present(block, "type", out _) ? ConfigFields.Str(block, "type", "", prefix) : null;
        // rope_parameters may carry only θ (plain RoPE); rope_scaling must name its type.
        if (type == null && prefix == "rope_parameters.") type = "default";
        if (type == null) throw new ModelConfigException("config: rope_scaling has no 'type' / 'rope_type'");
        if (KnownUnsupported.Contains(type))
            throw new ModelConfigException(
                $"config: {prefix}rope_type '{type}' is recognised but not implemented (supported: " +
                    $"{string.Join(", ", SupportedTypes)})");
        if (!SupportedTypes.Contains(type))
            throw new ModelConfigException($"config: {prefix}rope_type '{type}' is unknown (supported: " +
                $"{string.Join(", ", SupportedTypes)})");
        var d = new RopeParameters();
        var p = new RopeParameters
        {
            Type = type,
            Theta = theta,
            Factor = ConfigFields.Dbl(block, "factor", d.Factor, prefix),
            // HF falls back to max_position_embeddings when the original length is absent.
            OriginalMaxPositionEmbeddings =
                ConfigFields.Int(block, "original_max_position_embeddings", maxPositionEmbeddings, prefix),
            LowFreqFactor = ConfigFields.Dbl(block, "low_freq_factor", d.LowFreqFactor, prefix),
            HighFreqFactor = ConfigFields.Dbl(block, "high_freq_factor", d.HighFreqFactor, prefix),
            BetaFast = ConfigFields.Dbl(block, "beta_fast", d.BetaFast, prefix),
            BetaSlow = ConfigFields.Dbl(block, "beta_slow", d.BetaSlow, prefix),
            AttentionFactor = ConfigFields.NullableDbl(block, "attention_factor", prefix),
            Mscale = ConfigFields.NullableDbl(block, "mscale", prefix),
            MscaleAllDim = ConfigFields.NullableDbl(block, "mscale_all_dim", prefix),
            Truncate = ConfigFields.Bool(block, "truncate", true, prefix),
        };
        return p.Validate(prefix);
    }

    public RopeParameters Validate(string prefix = "rope_scaling.")
    {
        string F(double v) => v.ToString(CultureInfo.InvariantCulture);
        if (!(Theta > 0)) throw new ModelConfigException($"config: rope_theta must be positive, got {F(Theta)}");
        if (Type == "default") return this;
        if (!(Factor > 0)) throw new ModelConfigException($"config: {prefix}factor must be positive, got {F(Factor)}");
        if (Type == "llama3")
        {
            if (OriginalMaxPositionEmbeddings <= 0)
                throw new ModelConfigException($"config: {prefix}original_max_position_embeddings must be positive, " +
                    $"got {OriginalMaxPositionEmbeddings}");
            if (!(LowFreqFactor > 0) || !(HighFreqFactor > LowFreqFactor))
                throw new ModelConfigException(
                    $"config: {prefix}low_freq_factor ({F(LowFreqFactor)}) and high_freq_factor " +
                        $"({F(HighFreqFactor)}) must satisfy 0 < low < high");
        }
        if (Type == "yarn")
        {
            if (OriginalMaxPositionEmbeddings <= 0)
                throw new ModelConfigException($"config: {prefix}original_max_position_embeddings must be positive, " +
                    $"got {OriginalMaxPositionEmbeddings}");
            if (!(BetaFast > 0) || !(BetaSlow > 0))
                throw new ModelConfigException($"config: {prefix}beta_fast ({F(BetaFast)}) and beta_slow " +
                    $"({F(BetaSlow)}) must be positive");
        }
        return this;
    }

    /// <summary>Writes the block as <c>rope_scaling</c> (both type keys, so older and newer readers agree).</summary>
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteNumber("rope_theta", Theta);
        if (Type == "default")
        {
            w.WriteNull("rope_scaling");
            return;
        }
        w.WriteStartObject("rope_scaling");
        w.WriteString("type", Type);
        w.WriteString("rope_type", Type);
        w.WriteNumber("factor", Factor);
        if (Type is "llama3" or "yarn")
            w.WriteNumber("original_max_position_embeddings", OriginalMaxPositionEmbeddings);
        if (Type == "llama3")
        {
            w.WriteNumber("low_freq_factor", LowFreqFactor);
            w.WriteNumber("high_freq_factor", HighFreqFactor);
        }
        if (Type == "yarn")
        {
            w.WriteNumber("beta_fast", BetaFast);
            w.WriteNumber("beta_slow", BetaSlow);
            if (AttentionFactor is { } af) w.WriteNumber("attention_factor", af);
            if (Mscale is { } m) w.WriteNumber("mscale", m);
            if (MscaleAllDim is { } ma) w.WriteNumber("mscale_all_dim", ma);
            if (!Truncate) w.WriteBoolean("truncate", false);
        }
        w.WriteEndObject();
    }
}
