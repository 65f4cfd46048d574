// Cluster form: show the fields of the chosen source, and offer the contexts found in the
// kubeconfig (a path on the server, or the file being uploaded) in the context select.
(function () {
  "use strict";
  function rows(names) { return names.map(function (n) { return document.querySelector(".field-" + n); }); }
  function show(els, on) { els.forEach(function (el) { if (el) el.hidden = !on; }); }

  function init() {
    var meta = document.getElementById("cluster-form-meta");
    var source = document.getElementById("id_source");
    if (!meta || !source) return;
    var path = document.getElementById("id_kubeconfig_path");
    var upload = document.getElementById("id_kubeconfig_upload");
    var select = document.getElementById("id_context");
    var form = source.form;

    function toggle() {
      var s = source.value;
      show(Array.prototype.slice.call(document.querySelectorAll("fieldset.src-kubeconfig")), s === "kubeconfig" || s === "uploaded");
      show(Array.prototype.slice.call(document.querySelectorAll("fieldset.src-simulated")), s === "simulated");
      show(rows(["kubeconfig_path"]), s === "kubeconfig");
      show(rows(["kubeconfig_upload"]), s === "uploaded");
    }

    function fill(data) {
      var keep = select.value;
      select.textContent = "";
      var first = document.createElement("option");
      first.value = "";
      first.textContent = data.current ? "the file's current-context (" + data.current + ")" : "— choose a context —";
      select.appendChild(first);
      data.contexts.forEach(function (name) {
        var o = document.createElement("option");
        o.value = o.textContent = name;  // textContent: names are shown, never parsed as HTML
        if (name === keep) o.selected = true;
        select.appendChild(o);
      });
      var help = select.closest(".form-row").querySelector(".help, .help div");
      if (help) help.textContent = data.error ? "Cannot list contexts: " + data.error : "The contexts found in the kubeconfig.";
    }

    function refresh() {
      var body = new FormData();
      body.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      if (source.value === "uploaded" && upload && upload.files.length) body.append("kubeconfig_upload", upload.files[0]);
      else if (source.value === "kubeconfig" && path && path.value) body.append("kubeconfig_path", path.value);
      else return;
      fetch(meta.dataset.contextsUrl, { method: "POST", body: body, credentials: "same-origin" })
        .then(function (r) { return r.json(); }).then(fill).catch(function () {});
    }

    var timer = null;
    source.addEventListener("change", function () { toggle(); refresh(); });
    if (path) path.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 500); });
    if (upload) upload.addEventListener("change", refresh);
    toggle();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
