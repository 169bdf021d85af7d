# Sandboxed effect: when points arrive without a label, propose a placeholder label for each and
# report what was done. Runs in a confined worker: no files, no network, no processes.
def run(event):
    rows = event["result"]["bindings"]
    label = "<http://www.w3.org/2000/01/rdf-schema#label>"
    print(f"{len(rows)} unlabelled point(s) after receipt {event['receipt']['id']}")
    return {
        "add": [
            f'{row["point"]} {label} "unlabelled {row["point"][1:-1].rsplit("/", 1)[-1]}" .'
            for row in rows
        ],
        "events": [{"unlabelled": len(rows)}],
    }
