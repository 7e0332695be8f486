// Renders Nextflow process `script:`/`stub:` blocks with Groovy, as Nextflow does for a task.
// One JSON request per stdin line, one JSON answer per stdout line (see render.py):
//   request: {body, ext: {args: EXPR|null, prefix: EXPR|null}, task: {...}, params: {...},
//             vars: {name: value}, outputs: [pattern, ...]}
//   file values: {"__file__": "stage/name"} (one file: a Path) or {"__files__": [...]} (none or several:
//   a blank-separated list)
//   answer:  {command, outputs} or {error}
// or {functions: Groovy source, call: expression} -> {value} (main.nf's functions, e.g. samplesheetRows)
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import java.nio.file.Paths

/** Nextflow's list of staged files: renders as its items joined by blanks, false when empty. */
class BlankSeparatedList {
    @Delegate(interfaces = false)
    List target

    BlankSeparatedList(Collection items) { target = new ArrayList(items) }
    String toString() { target.join(' ') }
    boolean asBoolean() { !target.isEmpty() }
    def methodMissing(String name, args) { target.invokeMethod(name, args) }
}

class ProcessError extends RuntimeException {
    ProcessError(String message) { super(message) }
}

def decode(value) {
    if (value instanceof Map && value.containsKey('__file__')) {
        return Paths.get(value.__file__)
    }
    if (value instanceof Map && value.containsKey('__files__')) {
        return new BlankSeparatedList(value.__files__.collect { name -> Paths.get(name) })
    }
    if (value instanceof Map) {
        return value.collectEntries { k, v -> [k, decode(v)] }
    }
    if (value instanceof List) {
        return value.collect { v -> decode(v) }
    }
    return value
}

def render(Map request) {
    def binding = new Binding()
    def task = decode(request.task) as LinkedHashMap
    task.ext = [:]
    binding.setVariable('task', task)
    binding.setVariable('params', decode(request.params))
    decode(request.vars).each { name, value -> binding.setVariable(name, value) }
    binding.setVariable('error', { message -> throw new ProcessError(message.toString()) })
    def shell = new GroovyShell(binding)
    // conf/*.config: ext.args = '...' or a closure, evaluated per task with params and the inputs
    request.ext.each { key, expr ->
        if (expr != null) {
            def value = shell.evaluate(expr)
            task.ext[key] = value instanceof Closure ? value.call() : value
        }
    }
    def command = shell.evaluate(request.body)
    def outputs = request.outputs.collect { pattern -> shell.evaluate('"' + pattern.replace('"', '\\"') + '"').toString() }
    return [command: command.toString(), outputs: outputs]
}

/** Stand-in for Nextflow's file(): a path that also reads a CSV the way splitCsv(header: true)
 *  does for plain files (no quoted fields). */
class NfPath {
    @Delegate
    java.nio.file.Path path

    boolean exists() { java.nio.file.Files.exists(path) }
    String getName() { path.fileName.toString() }
    String toString() { path.toString() }

    List<Map> splitCsv(Map options) {
        def lines = path.toFile().readLines().findAll { line -> line.trim() }
        def header = lines[0].split(',', -1)*.trim()
        return lines.drop(1).collect { line ->
            def cells = line.split(',', -1)
            [header, header.indices.collect { i -> i < cells.size() ? cells[i] : null }].transpose().collectEntries()
        }
    }
}

/** Calls a function of main.nf (request: {functions: source, call: expression}) with file(),
 *  files() and error() as Nextflow has them; paths come back as strings. */
def callFunction(Map request) {
    def binding = new Binding()
    def file = { Map options = [:], name ->
        def found = new NfPath(path: Paths.get(name.toString()))
        if (options.checkIfExists && !found.exists()) {
            throw new ProcessError("No such file: ${name}")
        }
        found
    }
    binding.setVariable('file', file)
    binding.setVariable('files', { Map options = [:], pattern ->
        def parent = Paths.get(pattern.toString()).parent ?: Paths.get('.')
        def matcher = java.nio.file.FileSystems.default.getPathMatcher("glob:${Paths.get(pattern.toString()).fileName}")
        def found = parent.toFile().listFiles().findAll { f -> matcher.matches(f.toPath().fileName) }
            .collect { f -> new NfPath(path: f.toPath()) }
        if (options.checkIfExists && !found) {
            throw new ProcessError("No files match: ${pattern}")
        }
        found
    })
    binding.setVariable('error', { message -> throw new ProcessError(message.toString()) })
    def result = new GroovyShell(binding).evaluate(request.functions + '\n' + request.call)
    def plain
    plain = { value ->
        value instanceof NfPath ? value.toString()
            : value instanceof Map ? value.collectEntries { k, v -> [k, plain(v)] }
            : value instanceof Collection ? value.collect { v -> plain(v) }
            : value
    }
    return [value: plain(result)]
}

def slurper = new JsonSlurper()
System.in.eachLine { line ->
    def answer
    try {
        def request = slurper.parseText(line)
        answer = request.call ? callFunction(request) : render(request)
    }
    catch (Throwable e) {
        answer = [error: "${e.class.simpleName}: ${e.message}".toString()]
    }
    println(JsonOutput.toJson(answer))
    System.out.flush()
}
