// The Java peer of bench/serve.sh (issue 20): H2O's own runtime (h2o-genmodel) behind the
// JDK's built-in HTTP server, answering the MLOps scoring request the runtime shim answers.
//
//   javac -cp h2o-genmodel.jar -d OUT GenmodelServer.java
//   java -Dsun.net.httpserver.nodelay=true -cp h2o-genmodel.jar:OUT GenmodelServer MOJO PORT THREADS
//
// POST /model/score with {"fields":[...],"rows":[[...],...]} (cells strings, numbers or
// null) answers {"id":...,"fields":["predict", classes...],"score":[[...],...]} as the shim does,
// scoring every row with EasyPredictModelWrapper (unknown levels and unparseable numbers
// as missing, as the shim treats them). GET /readyz answers 200. The JSON reader and writer
// are minimal but complete for this shape (escapes, \\u sequences, nesting checked).
// Prints "listening on 127.0.0.1:PORT" once it accepts connections.

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import hex.genmodel.MojoModel;
import hex.genmodel.easy.EasyPredictModelWrapper;
import hex.genmodel.easy.RowData;
import hex.genmodel.easy.prediction.AbstractPrediction;
import hex.genmodel.easy.prediction.BinomialModelPrediction;
import hex.genmodel.easy.prediction.MultinomialModelPrediction;
import hex.genmodel.easy.prediction.RegressionModelPrediction;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;

public final class GenmodelServer {
    private final EasyPredictModelWrapper model;
    private final String[] outputNames;
    private final String id;

    GenmodelServer(String mojo) throws IOException {
        MojoModel m = MojoModel.load(mojo);
        model = new EasyPredictModelWrapper(new EasyPredictModelWrapper.Config()
                .setModel(m)
                .setConvertUnknownCategoricalLevelsToNa(true)
                .setConvertInvalidNumbersToNa(true));
        id = m.getUUID() == null ? "genmodel" : m.getUUID();
        String[] domain = m.getDomainValues(m.getResponseIdx());
        if (domain == null) {
            outputNames = new String[] {"predict"};
        } else {
            outputNames = new String[domain.length + 1];
            outputNames[0] = "predict";
            System.arraycopy(domain, 0, outputNames, 1, domain.length);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: GenmodelServer MOJO PORT THREADS");
            System.exit(2);
        }
        GenmodelServer s = new GenmodelServer(args[0]);
        HttpServer http = HttpServer.create(new InetSocketAddress("127.0.0.1", Integer.parseInt(args[1])), 1024);
        http.setExecutor(Executors.newFixedThreadPool(Integer.parseInt(args[2])));
        http.createContext("/model/score", s::score);
        http.createContext("/readyz", ex -> send(ex, 200, "ready\n".getBytes(StandardCharsets.UTF_8), "text/plain"));
        http.start();
        System.out.println("listening on 127.0.0.1:" + http.getAddress().getPort());
        System.out.flush();
    }

    private static void send(HttpExchange ex, int status, byte[] body, String type) throws IOException {
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(status, body.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(body);
        }
    }

    private void score(HttpExchange ex) throws IOException {
        try {
            if (!"POST".equals(ex.getRequestMethod())) {
                send(ex, 405, "{\"detail\":\"POST only\"}".getBytes(StandardCharsets.UTF_8), "application/json");
                return;
            }
            byte[] body;
            try (InputStream in = ex.getRequestBody()) {
                body = in.readAllBytes();
            }
            byte[] out;
            int status = 200;
            try {
                out = answer(body);
            } catch (IllegalArgumentException e) {
                status = 400;
                StringBuilder sb = new StringBuilder("{\"detail\":");
                Json.writeString(sb, String.valueOf(e.getMessage()));
                out = sb.append('}').toString().getBytes(StandardCharsets.UTF_8);
            }
            send(ex, status, out, "application/json");
        } catch (Exception e) {
            send(ex, 500, ("{\"detail\":\"" + e.getClass().getSimpleName() + "\"}").getBytes(StandardCharsets.UTF_8),
                    "application/json");
        } finally {
            ex.close();
        }
    }

    @SuppressWarnings("unchecked")
    private byte[] answer(byte[] body) throws Exception {
        Object req = new Json(new String(body, StandardCharsets.UTF_8)).parseDocument();
        if (!(req instanceof java.util.Map)) throw new IllegalArgumentException("the body is not an object");
        java.util.Map<String, Object> obj = (java.util.Map<String, Object>) req;
        Object f = obj.get("fields"), r = obj.get("rows");
        if (!(f instanceof List) || ((List<?>) f).isEmpty()) throw new IllegalArgumentException("fields");
        if (!(r instanceof List) || ((List<?>) r).isEmpty()) throw new IllegalArgumentException("rows");
        List<Object> fields = (List<Object>) f;
        String[] names = new String[fields.size()];
        for (int i = 0; i < names.length; i++) {
            if (!(fields.get(i) instanceof String)) throw new IllegalArgumentException("field " + i);
            names[i] = (String) fields.get(i);
        }
        StringBuilder sb = new StringBuilder(64 + ((List<?>) r).size() * 24 * outputNames.length);
        sb.append("{\"id\":");
        Json.writeString(sb, id);
        sb.append(",\"fields\":[");
        for (int i = 0; i < outputNames.length; i++) {
            if (i > 0) sb.append(',');
            Json.writeString(sb, outputNames[i]);
        }
        sb.append("],\"score\":[");
        int n = 0;
        for (Object rowObj : (List<Object>) r) {
            if (!(rowObj instanceof List) || ((List<?>) rowObj).size() != names.length)
                throw new IllegalArgumentException("Not enough elements in row " + n + " (zero-indexed)");
            List<Object> cells = (List<Object>) rowObj;
            RowData row = new RowData();
            for (int i = 0; i < names.length; i++) {
                Object c = cells.get(i);
                if (c == null) continue;
                if (!(c instanceof String)) throw new IllegalArgumentException("a cell is not a scalar");
                String v = (String) c;
                if (!v.isEmpty()) row.put(names[i], v);
            }
            AbstractPrediction p = model.predict(row);
            if (n++ > 0) sb.append(',');
            sb.append('[');
            if (p instanceof BinomialModelPrediction) {
                BinomialModelPrediction b = (BinomialModelPrediction) p;
                writeClassified(sb, b.label, b.classProbabilities);
            } else if (p instanceof MultinomialModelPrediction) {
                MultinomialModelPrediction m = (MultinomialModelPrediction) p;
                writeClassified(sb, m.label, m.classProbabilities);
            } else if (p instanceof RegressionModelPrediction) {
                sb.append('"').append(((RegressionModelPrediction) p).value).append('"');
            } else {
                throw new IllegalArgumentException("unsupported model category " + model.getModelCategory());
            }
            sb.append(']');
        }
        sb.append("]}");
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }

    private static void writeClassified(StringBuilder sb, String label, double[] probs) {
        Json.writeString(sb, label);
        for (double d : probs) sb.append(",\"").append(d).append('"');
    }

    /** A JSON reader for one document: objects (LinkedHashMap), arrays (ArrayList),
     *  strings, numbers and booleans (kept as their text, as the MLOps API reads cells),
     *  null. Refuses trailing garbage, bad escapes, nesting deeper than 64. */
    static final class Json {
        private final String s;
        private int i;
        private int depth;

        Json(String s) {
            this.s = s;
        }

        Object parseDocument() {
            Object v = value();
            ws();
            if (i != s.length()) throw err("trailing characters");
            return v;
        }

        private IllegalArgumentException err(String what) {
            return new IllegalArgumentException("the body is not valid JSON: " + what + " at offset " + i);
        }

        private void ws() {
            while (i < s.length()) {
                char c = s.charAt(i);
                if (c == ' ' || c == '\n' || c == '\r' || c == '\t') i++;
                else break;
            }
        }

        private Object value() {
            ws();
            if (i >= s.length()) throw err("unexpected end");
            char c = s.charAt(i);
            switch (c) {
                case '{': return object();
                case '[': return array();
                case '"': return string();
                case 'n': literal("null"); return null;
                case 't': literal("true"); return "true";
                case 'f': literal("false"); return "false";
                default: return number();
            }
        }

        private void literal(String w) {
            if (!s.startsWith(w, i)) throw err("unexpected token");
            i += w.length();
        }

        private String number() {
            int start = i;
            if (i < s.length() && s.charAt(i) == '-') i++;
            int digits = i;
            while (i < s.length() && Character.isDigit(s.charAt(i))) i++;
            if (i == digits) throw err("unexpected character");
            if (i < s.length() && s.charAt(i) == '.') {
                i++;
                int frac = i;
                while (i < s.length() && Character.isDigit(s.charAt(i))) i++;
                if (i == frac) throw err("bad number");
            }
            if (i < s.length() && (s.charAt(i) == 'e' || s.charAt(i) == 'E')) {
                i++;
                if (i < s.length() && (s.charAt(i) == '+' || s.charAt(i) == '-')) i++;
                int exp = i;
                while (i < s.length() && Character.isDigit(s.charAt(i))) i++;
                if (i == exp) throw err("bad number");
            }
            return s.substring(start, i);
        }

        private String string() {
            i++; // opening quote
            int start = i;
            while (i < s.length()) {
                char c = s.charAt(i);
                if (c == '"') return s.substring(start, i++);
                if (c == '\\') break;
                if (c < 0x20) throw err("control character in a string");
                i++;
            }
            StringBuilder sb = new StringBuilder(s.substring(start, i));
            while (i < s.length()) {
                char c = s.charAt(i++);
                if (c == '"') return sb.toString();
                if (c < 0x20) throw err("control character in a string");
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                if (i >= s.length()) break;
                char e = s.charAt(i++);
                switch (e) {
                    case '"': sb.append('"'); break;
                    case '\\': sb.append('\\'); break;
                    case '/': sb.append('/'); break;
                    case 'b': sb.append('\b'); break;
                    case 'f': sb.append('\f'); break;
                    case 'n': sb.append('\n'); break;
                    case 'r': sb.append('\r'); break;
                    case 't': sb.append('\t'); break;
                    case 'u':
                        if (i + 4 > s.length()) throw err("short \\u escape");
                        try {
                            sb.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        } catch (NumberFormatException x) {
                            throw err("bad \\u escape");
                        }
                        i += 4;
                        break;
                    default: throw err("bad escape");
                }
            }
            throw err("unterminated string");
        }

        private List<Object> array() {
            if (++depth > 64) throw err("nesting too deep");
            i++;
            List<Object> out = new ArrayList<>();
            ws();
            if (i < s.length() && s.charAt(i) == ']') {
                i++;
                depth--;
                return out;
            }
            while (true) {
                out.add(value());
                ws();
                if (i >= s.length()) throw err("unterminated array");
                char c = s.charAt(i++);
                if (c == ']') break;
                if (c != ',') throw err("expected , or ]");
            }
            depth--;
            return out;
        }

        private java.util.Map<String, Object> object() {
            if (++depth > 64) throw err("nesting too deep");
            i++;
            java.util.Map<String, Object> out = new java.util.LinkedHashMap<>();
            ws();
            if (i < s.length() && s.charAt(i) == '}') {
                i++;
                depth--;
                return out;
            }
            while (true) {
                ws();
                if (i >= s.length() || s.charAt(i) != '"') throw err("expected a member name");
                String k = string();
                ws();
                if (i >= s.length() || s.charAt(i++) != ':') throw err("expected :");
                out.put(k, value());
                ws();
                if (i >= s.length()) throw err("unterminated object");
                char c = s.charAt(i++);
                if (c == '}') break;
                if (c != ',') throw err("expected , or }");
            }
            depth--;
            return out;
        }

        static void writeString(StringBuilder sb, String v) {
            sb.append('"');
            for (int k = 0; k < v.length(); k++) {
                char c = v.charAt(k);
                switch (c) {
                    case '"': sb.append("\\\""); break;
                    case '\\': sb.append("\\\\"); break;
                    case '\n': sb.append("\\n"); break;
                    case '\r': sb.append("\\r"); break;
                    case '\t': sb.append("\\t"); break;
                    default:
                        if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                        else sb.append(c);
                }
            }
            sb.append('"');
        }
    }
}
