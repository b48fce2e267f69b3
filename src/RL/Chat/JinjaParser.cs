namespace NativeReasoner.RL.Chat;

/// <summary>
/// Recursive-descent parser for the Jinja subset, with jinja2's grammar and precedence:
/// conditional → or → and → not → comparisons (chained, in, not in) → + - → ~ → * / // % → ** → unary - +
/// → primary with postfix (.attr, [item], [a:b:c], call) and filters / tests (<c>| f</c>, <c>is [not] t</c>).
/// Tags: if/elif/else, for (with else, an if filter, loop.*, break/continue), set (name, tuple, ns.attr, block),
/// macro, raw. Anything else (extends, include, import, call, filter, with, do, …) is rejected with its name and line.
/// </summary>
internal sealed class JinjaParser
{
    private static readonly HashSet<string> Unsupported = new(StringComparer.Ordinal)
    {
        "extends", "block", "include", "import", "from", "call", "filter", "with", "do", "autoescape", "trans",
        "generation", "endgeneration",
    };

    private readonly List<JinjaToken> _tokens;
    private int _pos;

    private JinjaParser(List<JinjaToken> tokens) => _tokens = tokens;

    public static IReadOnlyList<Stmt> Parse(string source)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(source));
        var body = parser.ParseBody([], out _);
        return body;
    }

    private JinjaToken Current => _tokens[_pos];

    private JinjaToken Peek(int ahead = 1) => _tokens[Math.Min(_pos + ahead, _tokens.Count - 1)];

    private JinjaToken Next() => _tokens[_pos++];

    private static TemplateException Error(JinjaToken at, string reason) => new(at.Line, reason);

    private JinjaToken Expect(TokenKind kind, string? value = null, string? what = null)
    {
        var t = Current;
        if (t.Kind != kind || (value != null && t.Value != value))
            throw Error(t, $"expected {what ?? (value != null ? $"'{value}'" : kind.ToString())}, found {t}");
        return Next();
    }

    private string ExpectName(string what) => Expect(TokenKind.Name, null, what).Value;

    /// <summary>Statements until one of <paramref name="endTags"/> (its name is left in the tag, consumed).</summary>
    private List<Stmt> ParseBody(string[] endTags, out string endTag)
    {
        var body = new List<Stmt>();
        endTag = "";
        while (true)
        {
            var t = Current;
            switch (t.Kind)
            {
                case TokenKind.Eof:
                    if (endTags.Length > 0)
                        throw Error(t, "unexpected end of template: missing " +
                            string.Join(" or ", endTags.Select(e => "{% " + e + " %}")));
                    return body;
                case TokenKind.Data:
                    Next();
                    body.Add(new TextStmt(t.Line, t.Value));
                    break;
                case TokenKind.VariableBegin:
                    Next();
                    var e = ParseTuple();
                    Expect(TokenKind.VariableEnd, "}}");
                    body.Add(new OutputStmt(t.Line, e));
                    break;
                case TokenKind.BlockBegin:
                    var tag = Peek();
                    if (tag.Kind != TokenKind.Name) throw Error(tag, $"expected a tag name after '{{%', found {tag}");
                    if (endTags.Contains(tag.Value))
                    {
                        _pos += 2;
                        endTag = tag.Value;
                        return body;
                    }
                    Next();
                    body.Add(ParseStatement());
                    break;
                default:
                    throw Error(t, $"unexpected {t}");
            }
        }
    }

    private Stmt ParseStatement()
    {
        var tag = Next();
        switch (tag.Value)
        {
            case "if": return ParseIf(tag);
            case "for": return ParseFor(tag);
            case "set": return ParseSet(tag);
            case "macro": return ParseMacro(tag);
            case "break":
            case "continue":
                Expect(TokenKind.BlockEnd, "%}");
                return new BreakStmt(tag.Line, tag.Value == "break" ? Flow.Break : Flow.Continue);
        }
        if (tag.Value.StartsWith("end", StringComparison.Ordinal) || tag.Value is "elif" or "else")
            throw Error(tag, $"unexpected '{{% {tag.Value} %}}' with no open block it could close");
        if (Unsupported.Contains(tag.Value))
            throw Error(tag, $"the '{{% {tag.Value} %}}' tag is not supported by this Jinja subset");
        throw Error(tag, $"unknown tag '{{% {tag.Value} %}}'");
    }

    private Stmt ParseIf(JinjaToken tag)
    {
        var branches = new List<(Expr, IReadOnlyList<Stmt>)>();
        var condition = ParseExpression();
        Expect(TokenKind.BlockEnd, "%}");
        while (true)
        {
            var body = ParseBody(["elif", "else", "endif"], out var end);
            branches.Add((condition, body));
            if (end == "elif")
            {
                condition = ParseExpression();
                Expect(TokenKind.BlockEnd, "%}");
                continue;
            }
            if (end == "else")
            {
                Expect(TokenKind.BlockEnd, "%}");
                var otherwise = ParseBody(["endif"], out _);
                Expect(TokenKind.BlockEnd, "%}");
                return new IfStmt(tag.Line, branches, otherwise);
            }
            Expect(TokenKind.BlockEnd, "%}");
            return new IfStmt(tag.Line, branches, []);
        }
    }

    private List<string> ParseTargets()
    {
        bool parenthesised = Current.IsOperator("(");
        if (parenthesised) Next();
        var names = new List<string> { ExpectName("a loop or assignment variable name") };
        while (Current.IsOperator(","))
        {
            Next();
            if (Current.Kind != TokenKind.Name) break;
            names.Add(Next().Value);
        }
        if (parenthesised) Expect(TokenKind.Operator, ")");
        return names;
    }

    private Stmt ParseFor(JinjaToken tag)
    {
        var targets = ParseTargets();
        Expect(TokenKind.Name, "in", "'in'");
        var items = ParseTuple(withCondition: false);
        Expr? filter = null;
        if (Current.IsName("if"))
        {
            Next();
            filter = ParseExpression();
        }
        if (Current.IsName("recursive")) throw Error(Current,
            "recursive for loops are not supported by this Jinja subset");
        Expect(TokenKind.BlockEnd, "%}");
        var body = ParseBody(["else", "endfor"], out var end);
        IReadOnlyList<Stmt> otherwise = [];
        if (end == "else")
        {
            Expect(TokenKind.BlockEnd, "%}");
            otherwise = ParseBody(["endfor"], out _);
        }
        Expect(TokenKind.BlockEnd, "%}");
        return new ForStmt(tag.Line, targets, items, filter, body, otherwise);
    }

    private Stmt ParseSet(JinjaToken tag)
    {
        var first = ExpectName("a variable name after 'set'");
        if (Current.IsOperator("."))
        {
            Next();
            var attribute = ExpectName("an attribute name");
            Expect(TokenKind.Operator, "=");
            var value = ParseTuple();
            Expect(TokenKind.BlockEnd, "%}");
            return new SetStmt(tag.Line, [first], attribute, value);
        }
        var names = new List<string> { first };
        while (Current.IsOperator(","))
        {
            Next();
            names.Add(ExpectName("a variable name"));
        }
        if (Current.Kind == TokenKind.BlockEnd && names.Count == 1)
        {
            Next();
            var body = ParseBody(["endset"], out _);
            Expect(TokenKind.BlockEnd, "%}");
            return new SetBlockStmt(tag.Line, first, body);
        }
        if (Current.IsOperator("|")) throw Error(Current,
            "filtered set blocks ({% set x | filter %}) are not supported by this Jinja subset");
        Expect(TokenKind.Operator, "=");
        var v = ParseTuple();
        Expect(TokenKind.BlockEnd, "%}");
        return new SetStmt(tag.Line, names, null, v);
    }

    private Stmt ParseMacro(JinjaToken tag)
    {
        var name = ExpectName("a macro name");
        Expect(TokenKind.Operator, "(");
        var parameters = new List<(string, Expr?)>();
        while (!Current.IsOperator(")"))
        {
            if (parameters.Count > 0) Expect(TokenKind.Operator, ",");
            if (Current.IsOperator(")")) break;
            var p = ExpectName("a macro parameter name");
            Expr? fallback = null;
            if (Current.IsOperator("="))
            {
                Next();
                fallback = ParseExpression();
            }
            parameters.Add((p, fallback));
        }
        Next();
        Expect(TokenKind.BlockEnd, "%}");
        var body = ParseBody(["endmacro"], out _);
        if (Current.Kind == TokenKind.Name) Next();
        Expect(TokenKind.BlockEnd, "%}");
        return new MacroStmt(tag.Line, name, parameters, body);
    }

    // ---- expressions ----

    /// <summary>An expression, or a tuple when commas follow (<c>{% set a = 1, 2 %}</c>, <c>{{ a, b }}</c>).</summary>
    private Expr ParseTuple(bool withCondition = true)
    {
        int line = Current.Line;
        var first = withCondition ? ParseExpression() : ParseOr();
        if (!Current.IsOperator(",")) return first;
        var items = new List<Expr> { first };
        while (Current.IsOperator(","))
        {
            Next();
            if (IsTupleEnd()) break;
            items.Add(withCondition ? ParseExpression() : ParseOr());
        }
        return new SequenceExpr(line, items, isTuple: true);
    }

    private bool IsTupleEnd() => Current.Kind is TokenKind.BlockEnd or TokenKind.VariableEnd or TokenKind.Eof
        || Current.IsOperator(")") || Current.IsName("if") || Current.IsOperator("=");

    private Expr ParseExpression()
    {
        var e = ParseOr();
        while (Current.IsName("if"))
        {
            int line = Next().Line;
            var condition = ParseOr();
            Expr? otherwise = null;
            if (Current.IsName("else"))
            {
                Next();
                otherwise = ParseExpression();
            }
            e = new ConditionalExpr(line, condition, e, otherwise);
        }
        return e;
    }

    private Expr ParseOr()
    {
        var e = ParseAnd();
        while (Current.IsName("or"))
        {
            int line = Next().Line;
            e = new BinaryExpr(line, "or", e, ParseAnd());
        }
        return e;
    }

    private Expr ParseAnd()
    {
        var e = ParseNot();
        while (Current.IsName("and"))
        {
            int line = Next().Line;
            e = new BinaryExpr(line, "and", e, ParseNot());
        }
        return e;
    }

    private Expr ParseNot()
    {
        if (Current.IsName("not"))
        {
            int line = Next().Line;
            return new UnaryExpr(line, "not", ParseNot());
        }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        int line = Current.Line;
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            var t = Current;
            if (t.Kind == TokenKind.Operator && t.Value is "==" or "!=" or "<" or "<=" or ">" or ">=")
            {
                Next();
                rest.Add((t.Value, ParseMath1()));
            }
            else if (t.IsName("in"))
            {
                Next();
                rest.Add(("in", ParseMath1()));
            }
            else if (t.IsName("not") && Peek().IsName("in"))
            {
                _pos += 2;
                rest.Add(("not in", ParseMath1()));
            }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(line, first, rest);
    }

    private Expr ParseMath1()
    {
        var e = ParseConcat();
        while (Current.Kind == TokenKind.Operator && Current.Value is "+" or "-")
        {
            var op = Next();
            e = new BinaryExpr(op.Line, op.Value, e, ParseConcat());
        }
        return e;
    }

    private Expr ParseConcat()
    {
        var e = ParseMath2();
        while (Current.IsOperator("~"))
        {
            int line = Next().Line;
            e = new BinaryExpr(line, "~", e, ParseMath2());
        }
        return e;
    }

    private Expr ParseMath2()
    {
        var e = ParsePow();
        while (Current.Kind == TokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            var op = Next();
            e = new BinaryExpr(op.Line, op.Value, e, ParsePow());
        }
        return e;
    }

    private Expr ParsePow()
    {
        var e = ParseUnary(withFilter: true);
        while (Current.IsOperator("**"))
        {
            int line = Next().Line;
            e = new BinaryExpr(line, "**", e, ParseUnary(withFilter: true));
        }
        return e;
    }

    private Expr ParseUnary(bool withFilter)
    {
        var t = Current;
        Expr e;
        if (t.IsOperator("-") || t.IsOperator("+"))
        {
            Next();
            e = new UnaryExpr(t.Line, t.Value, ParseUnary(withFilter: false));
        }
        else e = ParsePrimary();
        e = ParsePostfix(e);
        return withFilter ? ParseFilterAndTests(e) : e;
    }

    private Expr ParsePrimary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokenKind.Name:
                return t.Value switch
                {
                    "true" or "True" => new LiteralExpr(t.Line, true),
                    "false" or "False" => new LiteralExpr(t.Line, false),
                    "none" or "None" => new LiteralExpr(t.Line, null),
                    _ => new NameExpr(t.Line, t.Value),
                };
            case TokenKind.String:
                // Adjacent string literals concatenate, as in Python.
                var text = t.Value;
                while (Current.Kind == TokenKind.String) text += Next().Value;
                return new LiteralExpr(t.Line, text);
            case TokenKind.Integer:
            case TokenKind.Float:
                return new LiteralExpr(t.Line, t.Literal);
            case TokenKind.Operator when t.Value == "(":
                {
                    if (Current.IsOperator(")"))
                    {
                        Next();
                        return new SequenceExpr(t.Line, [], isTuple: true);
                    }
                    var e = ParseTuple();
                    Expect(TokenKind.Operator, ")");
                    return e;
                }
            case TokenKind.Operator when t.Value == "[":
                {
                    var items = new List<Expr>();
                    while (!Current.IsOperator("]"))
                    {
                        if (items.Count > 0) Expect(TokenKind.Operator, ",");
                        if (Current.IsOperator("]")) break;
                        items.Add(ParseExpression());
                    }
                    Next();
                    return new SequenceExpr(t.Line, items, isTuple: false);
                }
            case TokenKind.Operator when t.Value == "{":
                {
                    var pairs = new List<(Expr, Expr)>();
                    while (!Current.IsOperator("}"))
                    {
                        if (pairs.Count > 0) Expect(TokenKind.Operator, ",");
                        if (Current.IsOperator("}")) break;
                        var key = ParseExpression();
                        Expect(TokenKind.Operator, ":");
                        pairs.Add((key, ParseExpression()));
                    }
                    Next();
                    return new DictExpr(t.Line, pairs);
                }
        }
        throw Error(t, $"unexpected {t} in an expression");
    }

    private Expr ParsePostfix(Expr e)
    {
        while (true)
        {
            var t = Current;
            if (t.IsOperator("."))
            {
                Next();
                var name = Next();
                if (name.Kind == TokenKind.Name) e = new AttributeExpr(t.Line, e, name.Value);
                else if (name.Kind == TokenKind.Integer) e = new ItemExpr(t.Line, e, new LiteralExpr(t.Line,
                    name.Literal));
                else throw Error(name, $"expected an attribute name after '.', found {name}");
            }
            else if (t.IsOperator("["))
            {
                Next();
                e = ParseSubscript(t.Line, e);
            }
            else if (t.IsOperator("("))
            {
                Next();
                e = new CallExpr(t.Line, e, ParseCallArguments());
            }
            else return e;
        }
    }

    private Expr ParseSubscript(int line, Expr target)
    {
        Expr? start = null, stop = null, step = null;
        if (!Current.IsOperator(":")) start = ParseExpression();
        if (Current.IsOperator("]"))
        {
            Next();
            return new ItemExpr(line, target, start!);
        }
        Expect(TokenKind.Operator, ":", "':' or ']'");
        if (!Current.IsOperator(":") && !Current.IsOperator("]")) stop = ParseExpression();
        if (Current.IsOperator(":"))
        {
            Next();
            if (!Current.IsOperator("]")) step = ParseExpression();
        }
        Expect(TokenKind.Operator, "]");
        return new SliceExpr(line, target, start, stop, step);
    }

    /// <summary>Arguments after '(' up to and including ')'.</summary>
    private CallArguments ParseCallArguments()
    {
        var positional = new List<Expr>();
        var named = new List<(string, Expr)>();
        while (!Current.IsOperator(")"))
        {
            if (positional.Count + named.Count > 0) Expect(TokenKind.Operator, ",", "',' or ')'");
            if (Current.IsOperator(")")) break;
            if (Current.IsOperator("*") || Current.IsOperator("**"))
                throw Error(Current, "*args / **kwargs in calls are not supported by this Jinja subset");
            if (Current.Kind == TokenKind.Name && Peek().IsOperator("="))
            {
                var name = Next().Value;
                Next();
                named.Add((name, ParseExpression()));
            }
            else
            {
                if (named.Count > 0) throw Error(Current, "a positional argument follows a keyword argument");
                positional.Add(ParseExpression());
            }
        }
        Next();
        return new CallArguments(positional, named);
    }

    private Expr ParseFilterAndTests(Expr e)
    {
        while (true)
        {
            var t = Current;
            if (t.IsOperator("|"))
            {
                Next();
                var nameToken = Expect(TokenKind.Name, null, "a filter name after '|'");
                var name = nameToken.Value;
                var filter = JinjaFilters.Find(name)
                    ?? throw Error(nameToken, $"unknown filter '{name}' (supported: {JinjaFilters.Describe()})");
                var args = CallArguments.None;
                if (Current.IsOperator("("))
                {
                    Next();
                    args = ParseCallArguments();
                }
                e = new FilterExpr(t.Line, e, name, filter, args);
            }
            else if (t.IsName("is"))
            {
                Next();
                bool negated = false;
                if (Current.IsName("not"))
                {
                    Next();
                    negated = true;
                }
                var nameToken = Next();
                if (nameToken.Kind != TokenKind.Name && !(nameToken.Kind == TokenKind.Operator
                    && nameToken.Value is "==" or "!=" or "<" or "<=" or ">" or ">="))
                    throw Error(nameToken, $"expected a test name after 'is', found {nameToken}");
                var test = JinjaTests.Find(nameToken.Value)
                    ?? throw Error(nameToken,
                        $"unknown test '{nameToken.Value}' (supported: {string.Join(", ", JinjaTests.Names.Order())})");
                var args = CallArguments.None;
                if (Current.IsOperator("("))
                {
                    Next();
                    args = ParseCallArguments();
                }
                else if (StartsTestArgument(Current))
                {
                    var arg = ParsePostfix(ParsePrimary());
                    args = new CallArguments([arg], []);
                }
                e = new TestExpr(t.Line, e, test, args, negated);
            }
            else if (t.IsOperator("("))
            {
                Next();
                e = new CallExpr(t.Line, e, ParseCallArguments());
            }
            else return e;
        }
    }

    private static bool StartsTestArgument(JinjaToken t) =>
        (t.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float
         || t.IsOperator("[") || t.IsOperator("{"))
        && !(t.Kind == TokenKind.Name && t.Value is "else" or "or" or "and" or "if" or "is" or "in" or "not");
}
