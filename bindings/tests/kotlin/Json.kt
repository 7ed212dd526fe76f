// A small JSON reader for the vector files (the tests use the Kotlin standard library
// only). Objects become Map<String, Any?>, arrays List<Any?>, numbers Long or Double.

package pushauth.tests

class Json private constructor(private val text: String) {
    private var at = 0

    companion object {
        fun parse(text: String): Any? {
            val p = Json(text)
            val value = p.value()
            p.space()
            require(p.at == text.length) { "trailing characters at ${p.at}" }
            return value
        }
    }

    private fun space() {
        while (at < text.length && text[at].isWhitespace()) at++
    }

    private fun value(): Any? {
        space()
        return when (val c = text[at]) {
            '{' -> obj()
            '[' -> arr()
            '"' -> str()
            't' -> literal("true", true)
            'f' -> literal("false", false)
            'n' -> literal("null", null)
            else -> if (c == '-' || c.isDigit()) num() else error("unexpected '$c' at $at")
        }
    }

    private fun literal(word: String, value: Any?): Any? {
        require(text.startsWith(word, at)) { "bad literal at $at" }
        at += word.length
        return value
    }

    private fun obj(): Map<String, Any?> {
        val out = LinkedHashMap<String, Any?>()
        at++
        space()
        if (text[at] == '}') { at++; return out }
        while (true) {
            space()
            val key = str()
            space()
            require(text[at++] == ':') { "expected ':' at $at" }
            out[key] = value()
            space()
            when (text[at++]) {
                ',' -> continue
                '}' -> return out
                else -> error("expected ',' or '}' at $at")
            }
        }
    }

    private fun arr(): List<Any?> {
        val out = ArrayList<Any?>()
        at++
        space()
        if (text[at] == ']') { at++; return out }
        while (true) {
            out.add(value())
            space()
            when (text[at++]) {
                ',' -> continue
                ']' -> return out
                else -> error("expected ',' or ']' at $at")
            }
        }
    }

    private fun str(): String {
        require(text[at++] == '"') { "expected string at $at" }
        val sb = StringBuilder()
        while (true) {
            val c = text[at++]
            when (c) {
                '"' -> return sb.toString()
                '\\' -> {
                    when (val e = text[at++]) {
                        '"', '\\', '/' -> sb.append(e)
                        'b' -> sb.append('\b')
                        'f' -> sb.append('\u000c')
                        'n' -> sb.append('\n')
                        'r' -> sb.append('\r')
                        't' -> sb.append('\t')
                        'u' -> { sb.append(text.substring(at, at + 4).toInt(16).toChar()); at += 4 }
                        else -> error("bad escape at $at")
                    }
                }
                else -> sb.append(c)
            }
        }
    }

    private fun num(): Any {
        val start = at
        while (at < text.length && (text[at].isDigit() || text[at] in "+-.eE")) at++
        val s = text.substring(start, at)
        return s.toLongOrNull() ?: s.toDouble()
    }
}

/** Serialises maps, lists, strings and numbers back to JSON (for JWKs). */
fun toJson(value: Any?): String = when (value) {
    null -> "null"
    is String -> "\"" + value.replace("\\", "\\\\").replace("\"", "\\\"") + "\""
    is Map<*, *> -> value.entries.joinToString(",", "{", "}") { toJson(it.key as String) + ":" + toJson(it.value) }
    is List<*> -> value.joinToString(",", "[", "]") { toJson(it) }
    else -> value.toString()
}

@Suppress("UNCHECKED_CAST")
fun Any?.obj(): Map<String, Any?> = this as Map<String, Any?>

@Suppress("UNCHECKED_CAST")
fun Any?.list(): List<Any?> = this as List<Any?>

fun Map<String, Any?>.str(key: String): String = this[key] as String

fun Map<String, Any?>.long(key: String): Long = this[key] as Long
