using System.Globalization;
using System.Text;

namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// Splits a template into text and tag tokens with the whitespace rules transformers uses:
/// trim_blocks (drop the first newline after a block or comment tag), lstrip_blocks (drop spaces
/// and tabs before a block or comment tag that starts its line; <c>{%+</c> keeps them), and the
/// <c>-</c> markers that strip all whitespace on their side. Newlines are normalised to <c>\n</c> and
/// one trailing newline of the source is dropped, as Jinja2 does without keep_trailing_newline.
/// </summary>
internal sealed class TemplateLexer
{
    private static readonly string[] Operators =
        ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", ".", ",", ":", "|", "(", ")", "[", "]", "{", "}"];

    private readonly string _source;
    private readonly List<Token> _tokens = [];
    private int _pos;
    private int _line = 1;

    private TemplateLexer(string source) => _source = source;

    public static List<Token> Tokenize(string source)
    {
        source = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        if (source.EndsWith('\n'))
            source = source[..^1];
        var lexer = new TemplateLexer(source);
        lexer.Run();
        return lexer._tokens;
    }

    private void Run()
    {
        var lineStarting = true;
        while (_pos < _source.Length)
        {
            var open = FindOpening(_pos);
            if (open < 0)
            {
                AddText(_source[_pos..]);
                break;
            }

            var text = _source[_pos..open];
            var kind = _source[open + 1];
            var sign = open + 2 < _source.Length && _source[open + 2] is '-' or '+' ? _source[open + 2] : '\0';
            if (sign == '-')
            {
                text = PyStrings.StripEnd(text);
            }
            else if (sign != '+' && kind != '{')
            {
                var lineStart = text.LastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && lineStart < text.Length && text.AsSpan(lineStart).ToString().All(PyStrings.IsSpace))
                    text = text[..lineStart];
            }

            AddText(text);
            _pos = open + 2 + (sign == '\0' ? 0 : 1);
            lineStarting = kind switch
            {
                '#' => Comment(),
                '{' => Tag(TokenKind.VariableBegin, TokenKind.VariableEnd, "}}", trimNewline: false),
                _ => Tag(TokenKind.BlockBegin, TokenKind.BlockEnd, "%}", trimNewline: true),
            };
        }

        _tokens.Add(new Token(TokenKind.End, "", _line));
    }

    private int FindOpening(int from)
    {
        for (var i = _source.IndexOf('{', from); i >= 0 && i + 1 < _source.Length; i = _source.IndexOf('{', i + 1))
        {
            if (_source[i + 1] is '{' or '%' or '#')
                return i;
        }

        return -1;
    }

    private void AddText(string text)
    {
        if (text.Length > 0)
            _tokens.Add(new Token(TokenKind.Text, text, _line));
        _line += text.Count(c => c == '\n');
    }

    // Returns whether what was consumed ends with a newline (lstrip_blocks then applies to the next tag).
    private bool Comment()
    {
        var end = _source.IndexOf("#}", _pos, StringComparison.Ordinal);
        if (end < 0)
            throw new TemplateSyntaxException("comment not closed with '#}'", _line);
        var body = _source[_pos..end];
        _line += body.Count(c => c == '\n');
        _pos = end + 2;
        return AfterClose(body.EndsWith('-'), body.EndsWith('+'), trimNewline: true);
    }

    private bool Tag(TokenKind begin, TokenKind endKind, string close, bool trimNewline)
    {
        _tokens.Add(new Token(begin, "", _line));
        var depth = 0;
        while (true)
        {
            SkipSpace();
            if (_pos >= _source.Length)
                throw new TemplateSyntaxException($"tag not closed with '{close}'", _line);
            if (depth == 0)
            {
                var marker = _source[_pos] is '-' or '+' ? _source[_pos] : '\0';
                if (string.CompareOrdinal(_source, _pos + (marker == '\0' ? 0 : 1), close, 0, 2) == 0
                    && (marker != '+' || endKind == TokenKind.BlockEnd))
                {
                    _tokens.Add(new Token(endKind, "", _line));
                    _pos += 2 + (marker == '\0' ? 0 : 1);
                    return AfterClose(marker == '-', marker == '+', trimNewline);
                }
            }

            var token = ReadToken();
            if (token.Kind == TokenKind.Operator)
            {
                if (token.Value is "(" or "[" or "{")
                    depth++;
                else if (token.Value is ")" or "]" or "}")
                    depth = Math.Max(0, depth - 1);
            }

            _tokens.Add(token);
        }
    }

    private bool AfterClose(bool stripAll, bool keep, bool trimNewline)
    {
        var start = _pos;
        if (stripAll)
        {
            while (_pos < _source.Length && PyStrings.IsSpace(_source[_pos]))
                _pos++;
        }
        else if (!keep && trimNewline && _pos < _source.Length && _source[_pos] == '\n')
        {
            _pos++;
        }

        _line += _source.AsSpan(start, _pos - start).Count('\n');
        return _pos > start ? _source[_pos - 1] == '\n' : false;
    }

    private void SkipSpace()
    {
        while (_pos < _source.Length && PyStrings.IsSpace(_source[_pos]))
        {
            if (_source[_pos] == '\n')
                _line++;
            _pos++;
        }
    }

    private Token ReadToken()
    {
        var c = _source[_pos];
        if (char.IsAsciiLetter(c) || c == '_')
        {
            var start = _pos;
            while (_pos < _source.Length && (char.IsAsciiLetterOrDigit(_source[_pos]) || _source[_pos] == '_'))
                _pos++;
            return new Token(TokenKind.Name, _source[start.._pos], _line);
        }

        if (char.IsAsciiDigit(c))
            return ReadNumber();
        if (c is '\'' or '"')
            return ReadString(c);
        foreach (var op in Operators)
        {
            if (string.CompareOrdinal(_source, _pos, op, 0, op.Length) == 0)
            {
                _pos += op.Length;
                return new Token(TokenKind.Operator, op, _line);
            }
        }

        throw new TemplateSyntaxException($"unexpected character '{c}'", _line);
    }

    private Token ReadNumber()
    {
        var start = _pos;
        SkipDigits();
        var isFloat = false;
        if (_pos + 1 < _source.Length && _source[_pos] == '.' && char.IsAsciiDigit(_source[_pos + 1]))
        {
            isFloat = true;
            _pos++;
            SkipDigits();
        }

        if (_pos < _source.Length && _source[_pos] is 'e' or 'E')
        {
            var mark = _pos++;
            if (_pos < _source.Length && _source[_pos] is '+' or '-')
                _pos++;
            if (_pos < _source.Length && char.IsAsciiDigit(_source[_pos]))
            {
                isFloat = true;
                SkipDigits();
            }
            else
            {
                _pos = mark;
            }
        }

        var text = _source[start.._pos].Replace("_", "", StringComparison.Ordinal);
        if (isFloat)
            return new Token(TokenKind.Float, text, _line, double.Parse(text, CultureInfo.InvariantCulture));
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? new Token(TokenKind.Integer, text, _line, value)
            : throw new TemplateSyntaxException($"integer literal {text} is too large", _line);
    }

    private void SkipDigits()
    {
        while (_pos < _source.Length && (char.IsAsciiDigit(_source[_pos]) || (_source[_pos] == '_' && _pos + 1 < _source.Length && char.IsAsciiDigit(_source[_pos + 1]))))
            _pos++;
    }

    // Python string-literal escapes (Jinja2 decodes literals with "unicode-escape"); an unknown escape stays as written.
    private Token ReadString(char quote)
    {
        var line = _line;
        var value = new StringBuilder();
        _pos++;
        while (true)
        {
            if (_pos >= _source.Length)
                throw new TemplateSyntaxException("string literal not closed", line);
            var c = _source[_pos++];
            if (c == quote)
                break;
            if (c == '\n')
                _line++;
            if (c != '\\' || _pos >= _source.Length)
            {
                value.Append(c);
                continue;
            }

            var e = _source[_pos++];
            switch (e)
            {
                case 'n': value.Append('\n'); break;
                case 't': value.Append('\t'); break;
                case 'r': value.Append('\r'); break;
                case 'b': value.Append('\b'); break;
                case 'f': value.Append('\f'); break;
                case 'v': value.Append('\v'); break;
                case 'a': value.Append('\a'); break;
                case '0': value.Append('\0'); break;
                case '\\' or '\'' or '"': value.Append(e); break;
                case '\n': _line++; break;
                case 'x': AppendCodePoint(value, 2, line); break;
                case 'u': AppendCodePoint(value, 4, line); break;
                case 'U': AppendCodePoint(value, 8, line); break;
                default: value.Append('\\').Append(e); break;
            }
        }

        var text = value.ToString();
        return new Token(TokenKind.String, text, line, text);
    }

    private void AppendCodePoint(StringBuilder value, int digits, int line)
    {
        if (_pos + digits > _source.Length || !int.TryParse(_source.AsSpan(_pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code)
            || code > 0x10FFFF)
            throw new TemplateSyntaxException($"bad \\{_source[_pos - 1]} escape in a string literal", line);
        _pos += digits;
        value.Append(char.ConvertFromUtf32(code));
    }
}
